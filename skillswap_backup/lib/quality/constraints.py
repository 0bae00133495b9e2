"""Translate PostgreSQL CHECK constraints into rules Great Expectations can evaluate.

Only two shapes are translated, because only they map onto an expectation without
re-implementing SQL: numeric ranges on one column (`>=`, `>`, `<=`, `<`, `=` with a literal,
`BETWEEN`) and value sets (`col = ANY (ARRAY[...])`, `col = 'x'`). A constraint is translated
whole or not at all; anything else comes back with the reason it was skipped, so reports can say
which rules went unchecked instead of pretending they were.

Input is `pg_get_constraintdef()` output, e.g. `CHECK (((rating >= 1) AND (rating <= 5)))`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_OPERATORS = (">=", "<=", "<>", "!=", "=", ">", "<")
_FLIP = {">=": "<=", "<=": ">=", ">": "<", "<": ">", "=": "="}
_TRAILING_FLAGS = re.compile(r"\s+(NOT VALID|NO INHERIT)\s*$", re.IGNORECASE)
_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


class Untranslatable(ValueError):
    """Raised inside the parser; carries the human reason a constraint is skipped."""


@dataclass(frozen=True)
class RangeRule:
    column: str
    min_value: float | int | None = None
    max_value: float | int | None = None
    strict_min: bool = False
    strict_max: bool = False


@dataclass(frozen=True)
class SetRule:
    column: str
    values: tuple = ()


@dataclass
class Translation:
    name: str
    definition: str
    rules: list[RangeRule | SetRule] = field(default_factory=list)
    skipped_reason: str = ""

    @property
    def translated(self) -> bool:
        return not self.skipped_reason


def translate_check(name: str, definition: str) -> Translation:
    """Rules for one CHECK constraint, or the reason it cannot be expressed as expectations."""
    result = Translation(name=name, definition=definition)
    try:
        body = _check_body(definition)
        conjuncts = _split_top_level(_expand_between(body), " AND ")
        ranges: dict[str, dict] = {}
        for conjunct in conjuncts:
            rule = _conjunct(conjunct)
            if isinstance(rule, SetRule):
                result.rules.append(rule)
                continue
            column, op, value = rule
            bounds = ranges.setdefault(column, {})
            if op in (">=", ">", "="):
                _tighten(bounds, "min", value, op == ">")
            if op in ("<=", "<", "="):
                _tighten(bounds, "max", value, op == "<")
        for column, bounds in ranges.items():
            result.rules.append(
                RangeRule(
                    column=column,
                    min_value=bounds.get("min"),
                    max_value=bounds.get("max"),
                    strict_min=bounds.get("strict_min", False),
                    strict_max=bounds.get("strict_max", False),
                )
            )
    except Untranslatable as reason:
        result.rules = []
        result.skipped_reason = str(reason)
    return result


def _tighten(bounds: dict, side: str, value, strict: bool) -> None:
    current = bounds.get(side)
    better = current is None or (value > current if side == "min" else value < current)
    if better or (value == current and strict):
        bounds[side] = value
        bounds[f"strict_{side}"] = strict


def _check_body(definition: str) -> str:
    text = _TRAILING_FLAGS.sub("", definition.strip())
    text = _TRAILING_FLAGS.sub("", text)
    if not text.upper().startswith("CHECK"):
        raise Untranslatable("not a CHECK constraint")
    return _strip_parens(text[5:].strip())


def _strip_parens(text: str) -> str:
    """Remove parentheses that wrap the whole expression, however many levels."""
    text = text.strip()
    while text.startswith("(") and _matching_paren(text, 0) == len(text) - 1:
        text = text[1:-1].strip()
    return text


def _unquoted(text: str):
    """(offset, character, bracket depth before it) for every character outside quotes; a
    doubled quote inside quotes is an escaped one."""
    depth, quoted, i = 0, None, 0
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == quoted:
                if i + 1 < len(text) and text[i + 1] == quoted:
                    i += 1
                else:
                    quoted = None
        elif ch in "'\"":
            quoted = ch
        else:
            yield i, ch, depth
            depth += 1 if ch in "([" else -1 if ch in ")]" else 0
        i += 1


def _matching_paren(text: str, start: int) -> int:
    for i, ch, depth in _unquoted(text[start:]):
        if ch in ")]" and depth == 1:
            return start + i
    raise Untranslatable("unbalanced parentheses")


def _top_level_positions(text: str, needle: str) -> list[int]:
    """Offsets of `needle` outside quotes and brackets (case-insensitive)."""
    found, free_from = [], 0
    upper, target = text.upper(), needle.upper()
    for i, ch, depth in _unquoted(text):
        if i >= free_from and depth == 0 and ch not in "()[]" and upper.startswith(target, i):
            found.append(i)
            free_from = i + len(needle)
    return found


def _split_top_level(text: str, separator: str) -> list[str]:
    text = _strip_parens(text)
    if _top_level_positions(text, " OR "):
        raise Untranslatable("uses OR")
    parts, last = [], 0
    for pos in _top_level_positions(text, separator):
        parts.append(text[last:pos])
        last = pos + len(separator)
    parts.append(text[last:])
    return [_strip_parens(p) for p in parts]


def _expand_between(text: str) -> str:
    """`x BETWEEN a AND b` -> `(x >= a) AND (x <= b)`, before the AND split would cut it in two."""
    pattern = re.compile(
        rf"(?P<col>\(?{_IDENT}\)?(?:::[\w\s\[\]]+?)?)\s+BETWEEN\s+(?P<lo>\S+)\s+AND\s+(?P<hi>[^\s)]+)",
        re.IGNORECASE,
    )
    if re.search(r"\bNOT\s+BETWEEN\b|\bBETWEEN\s+SYMMETRIC\b", text, re.IGNORECASE):
        raise Untranslatable("uses NOT BETWEEN or BETWEEN SYMMETRIC")
    return pattern.sub(lambda m: f"(({m['col']} >= {m['lo']}) AND ({m['col']} <= {m['hi']}))", text)


def _conjunct(text: str):
    """One AND-ed term: (column, operator, number) for a range, or a SetRule."""
    any_pos = _top_level_positions(text, "= ANY")
    if any_pos:
        column = _column(text[: any_pos[0]])
        return SetRule(column=column, values=tuple(_array_values(text[any_pos[0] + 5 :])))
    for op in _OPERATORS:
        positions = _top_level_positions(text, op)
        if not positions:
            continue
        if len(positions) > 1 or op in ("<>", "!="):
            raise Untranslatable(f"unsupported comparison {op!r}")
        left, right = text[: positions[0]].strip(), text[positions[0] + len(op) :].strip()
        column, literal, operator = _oriented(left, right, op)
        if op == "=" and not isinstance(literal, (int, float)):
            return SetRule(column=column, values=(literal,))
        if not isinstance(literal, (int, float)):
            raise Untranslatable("compares with a non-numeric value")
        return column, operator, literal
    raise Untranslatable("not a comparison of one column with a constant")


def _oriented(left: str, right: str, op: str):
    try:
        return _column(left), _literal(right), op
    except Untranslatable:
        pass
    try:
        return _column(right), _literal(left), _FLIP[op]
    except Untranslatable:
        raise Untranslatable("not a comparison of one column with a constant") from None


def _without_cast(text: str) -> tuple[str, bool]:
    """Drop a trailing top-level `::type` cast; say whether there was one."""
    text, had_cast = _strip_parens(text.strip()), False
    while casts := _top_level_positions(text, "::"):
        text, had_cast = _strip_parens(text[: casts[0]].strip()), True
    return text, had_cast


def _column(text: str) -> str:
    """A bare or quoted column name, possibly cast: `rating`, `"Rating"`, `(status)::text`."""
    text, _ = _without_cast(text)
    if not re.fullmatch(_IDENT, text):
        raise Untranslatable(f"{text!r} is not a plain column")
    if text.startswith('"'):
        return text[1:-1].replace('""', '"')
    if text.upper() in {"TRUE", "FALSE", "NULL", "VALUE"}:
        raise Untranslatable(f"{text!r} is not a column")
    return text


def _literal(text: str):
    """A constant: 5, (5)::numeric, '-1'::integer, 'pending'::text, (- 1)."""
    text, cast = _without_cast(text)
    text = re.sub(r"^-\s+", "-", text)
    if text.startswith("'") and text.endswith("'") and len(text) >= 2:
        inner = text[1:-1].replace("''", "'")
        return _number(inner) if cast and _NUMBER.match(inner) else inner
    if _NUMBER.match(text):
        return _number(text)
    raise Untranslatable(f"{text!r} is not a constant")


def _number(text: str) -> int | float:
    value = float(text)
    if value.is_integer() and re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    return value


def _array_values(text: str) -> list:
    """Elements of `(ARRAY['a'::text, 'b'::text])` or `((ARRAY[...])::text[])`."""
    text, _ = _without_cast(text)
    if not text.upper().startswith("ARRAY[") or not text.endswith("]"):
        raise Untranslatable("= ANY over something other than an ARRAY literal")
    inner = text[6:-1]
    positions = _top_level_positions(inner, ",")
    items, last = [], 0
    for pos in positions:
        items.append(inner[last:pos])
        last = pos + 1
    items.append(inner[last:])
    return [_literal(item) for item in items if item.strip()]
