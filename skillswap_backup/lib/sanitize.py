"""What the JSON export tier may show: a policy file, a per-table plan, vectorised batch rewriting.

The JSON tier is the readable, shareable copy of a snapshot, so it never carries secrets; the
Parquet tier stays full fidelity (restores need the password hashes) and is encrypted instead.

- **Policy** (`policies/sanitize.json`, or the file in `BACKUP_SANITIZE_POLICY`): tables left out
  entirely (session stores, one-time codes, reset tokens), and ordered per-column rules: keep,
  drop, hash, or fake:<kind>. Patterns are globs on `column`, `table.column` or
  `schema.table.column`, matched against snake_case names so Drizzle's or Prisma's camelCase
  columns (`passwordHash`) match too. `columns` rules always apply; `anonymize` rules (personal
  data: emails, names, phones, places, IPs) only with `anonymize=True`.
- **Plan** (`plan_table`): the policy resolved for one catalog table. Two safety rules sit on top
  of the policy: integer key columns are never transformed (the JSON must stay relational), and a
  foreign key column takes the transform of the key it references, when the catalog is given,
  so a child column with an unmatched name neither leaks an email nor breaks the join.
- **Values** (`TablePlan.refine_with_sample`): a kept string column whose values look like
  password hashes (bcrypt, argon2, the passport-local scrypt `hex.salt`, pbkdf2, crypt) is dropped
  whatever its name; after that, `apply` still blanks any single cell that looks like one, so a
  hash first seen in a later batch does not leak either.

Hashes and fakes are pure functions of (key, value): HMAC-SHA256 with `BACKUP_SANITIZE_KEY`, the
same whatever the table or column, so a hashed foreign key still matches the hashed key it refers
to, and distinct emails stay distinct (64 bits of the HMAC). Without the variable a fixed,
documented key is used and `SanitizePolicy.key_is_default` says so: anyone can then recompute
the hash of a guessed value, so set the key before sharing anonymized exports.
"""

from __future__ import annotations

import fnmatch
import functools
import hmac
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from hashlib import sha256
from importlib.resources import files
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from .catalog import Catalog, Column, Table
from .passwords import ANY_HASH_FORMAT, HEX_DIGEST, detect_scheme

POLICY_VAR = "BACKUP_SANITIZE_POLICY"
KEY_VAR = "BACKUP_SANITIZE_KEY"
# Public on purpose: it only keeps hashes stable between runs until a real key is set.
DEFAULT_KEY = b"skillswap-backup/sanitize/default-key/v1"
HASH_HEX_DIGITS = 16

PASSWORD_COLUMN_PATTERNS = (
    "password", "passwd", "pwd", "pass", "passcode", "*_password", "*_passwd", "*_pwd",
    "password_hash", "*_password_hash", "password_digest", "hashed_password", "encrypted_password",
)  # fmt: skip

_INTEGER_TYPES = {"smallint", "integer", "bigint"}
_LIST_KEYS = ("exclude_tables", "include_tables", "columns", "anonymize")
_LOOKS_HASHED = f"{ANY_HASH_FORMAT}|(?:{HEX_DIGEST})"


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and what to fix."""


# --- the policy ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    patterns: tuple[str, ...]
    action: str
    why: str = ""

    def first_match(self, schema: str, table: str, column: str) -> str | None:
        return next((p for p in self.patterns if _pattern_matches(p, (schema, table, column))), None)


@dataclass(frozen=True)
class SanitizePolicy:
    exclude_tables: tuple[str, ...] = ()
    include_tables: tuple[str, ...] = ()
    columns: tuple[Rule, ...] = ()
    anonymize: tuple[Rule, ...] = ()
    value_detection: bool = True
    key: bytes = field(default=DEFAULT_KEY, repr=False)
    key_is_default: bool = True
    source: str = "built-in"

    def exclusion(self, table: Table) -> str | None:
        """The exclude pattern that leaves `table` out of JSON, unless an include pattern keeps it."""
        names = (table.schema, table.name)
        if any(_pattern_matches(p, names) for p in self.include_tables):
            return None
        return next((p for p in self.exclude_tables if _pattern_matches(p, names)), None)

    def column_action(self, table: Table, column: Column, *, anonymize: bool) -> tuple[str, str]:
        """(action, reason) from the first rule matching the column; ("keep", "") when none does."""
        rules = self.columns + (self.anonymize if anonymize else ())
        for rule in rules:
            pattern = rule.first_match(table.schema, table.name, column.name)
            if pattern is not None:
                return rule.action, f"rule {pattern!r}" + (f" ({rule.why})" if rule.why else "")
        return "keep", ""


def default_policy_path() -> Path:
    return Path(str(files("skillswap_backup") / "policies" / "sanitize.json"))


def load_policy(path: Path | None = None, *, environ: Mapping[str, str] = os.environ) -> SanitizePolicy:
    """The policy at `path`, else at $BACKUP_SANITIZE_POLICY, else the shipped default."""
    chosen = path or (Path(environ[POLICY_VAR]) if environ.get(POLICY_VAR) else default_policy_path())
    data = _read_policy_file(chosen)
    if data.get("extends") == "default":
        base = _read_policy_file(default_policy_path())
        # The user's rules go first (first match wins); table lists add up.
        data = {**base, **data, **{k: data.get(k, []) + base.get(k, []) for k in _LIST_KEYS}}
    elif "extends" in data:
        raise PolicyError(f'sanitize policy {chosen}: "extends" can only be "default"')
    key = environ.get(KEY_VAR)
    return SanitizePolicy(
        exclude_tables=tuple(_patterns(data, "exclude_tables", chosen)),
        include_tables=tuple(_patterns(data, "include_tables", chosen)),
        columns=_rules(data, "columns", chosen),
        anonymize=_rules(data, "anonymize", chosen),
        value_detection=bool(data.get("value_detection", True)),
        key=key.encode() if key else DEFAULT_KEY,
        key_is_default=not key,
        source=str(chosen),
    )


def _read_policy_file(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise PolicyError(
            f"cannot read sanitize policy {path}: {exc.strerror} (check {POLICY_VAR})"
        ) from None
    except json.JSONDecodeError as exc:
        raise PolicyError(f"sanitize policy {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"sanitize policy {path} must be a JSON object")
    return data


def _patterns(data: dict, key: str, path: Path) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value):
        raise PolicyError(f"sanitize policy {path}: {key!r} must be a list of non-empty glob strings")
    return value


def _rules(data: dict, key: str, path: Path) -> tuple[Rule, ...]:
    rules = []
    for number, raw in enumerate(data.get(key, []), start=1):
        where = f"sanitize policy {path}: {key} rule {number}"
        if not isinstance(raw, dict):
            raise PolicyError(f'{where} must be an object with "match" and "action"')
        action = raw.get("action")
        if action not in ("keep", "drop", "hash") and not (
            isinstance(action, str) and action.startswith("fake:") and action[5:] in FAKERS
        ):
            kinds = ", ".join(f"fake:{k}" for k in FAKERS)
            raise PolicyError(f"{where}: unknown action {action!r} (use keep, drop, hash or one of {kinds})")
        rules.append(Rule(tuple(_patterns(raw, "match", path)), action, str(raw.get("why", ""))))
    return tuple(rules)


@functools.cache  # asked for every column of every batch
def snake_name(name: str) -> str:
    """passwordHash -> password_hash, lastIP -> last_ip, IPAddress -> ip_address."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return re.sub(r"[^0-9A-Za-z]+", "_", name).lower()


def _glob(pattern: str, name: str) -> bool:
    return fnmatch.fnmatchcase(snake_name(name), pattern.lower())


def _pattern_matches(pattern: str, names: tuple[str, ...]) -> bool:
    """One glob per trailing name: `column`, `table.column`, `schema.table.column` (or `[schema.]table`)."""
    parts = pattern.split(".")
    return len(parts) <= len(names) and all(map(_glob, parts, names[-len(parts) :]))


# --- deterministic fakes --------------------------------------------------------------------

_FIRST_NAMES = (
    "Alex", "Blair", "Casey", "Dana", "Eden", "Finley", "Gray", "Harper", "Indy", "Jordan", "Kai",
    "Logan", "Morgan", "Noel", "Oakley", "Parker", "Quinn", "Reese", "Sage", "Taylor", "Uma", "Val",
    "Wren", "Xan", "Yael", "Zion", "Ari", "Bo", "Cam", "Drew", "Ellis", "Frankie",
)  # fmt: skip
_LAST_NAMES = (
    "Archer", "Brooks", "Carter", "Dalton", "Ellison", "Fletcher", "Garner", "Hayes", "Ingram",
    "Jensen", "Keller", "Lowell", "Mercer", "Nolan", "Osborne", "Prescott", "Quinlan", "Rowe",
    "Sutton", "Thorne", "Upton", "Vance", "Whitaker", "Yates", "Ashby", "Bishop", "Crane", "Dune",
    "Easton", "Foster", "Greer", "Hollis",
)  # fmt: skip
_PLACES = (
    "Springfield", "Riverton", "Lakeside", "Fairview", "Oakridge", "Millbrook", "Brookfield",
    "Maplewood", "Cedar Falls", "Pine Hill", "Ashford", "Greenvale", "Kingsbridge", "Westhaven",
    "Northwood", "Stonebridge",
)  # fmt: skip
_STREETS = ("Oak", "Maple", "Cedar", "Elm", "Pine", "Birch", "Willow", "Chestnut", "Aspen", "Hawthorn")


def _pick(options: tuple[str, ...], digest: bytes, offset: int) -> str:
    return options[int.from_bytes(digest[offset : offset + 2], "big") % len(options)]


def _phone(digest: bytes) -> str:
    # 555-01xx numbers are reserved for fiction in North America.
    area = 200 + int.from_bytes(digest[4:6], "big") % 800
    return f"+1-{area}-555-01{digest[6] % 100:02d}"


FAKERS: dict[str, Callable[[bytes], str]] = {
    "email": lambda d: f"user-{d.hex()[:HASH_HEX_DIGITS]}@example.invalid",
    "first_name": lambda d: _pick(_FIRST_NAMES, d, 0),
    "last_name": lambda d: _pick(_LAST_NAMES, d, 2),
    "full_name": lambda d: f"{_pick(_FIRST_NAMES, d, 0)} {_pick(_LAST_NAMES, d, 2)}",
    "username": lambda d: f"user_{d.hex()[:HASH_HEX_DIGITS]}",
    "phone": _phone,
    "city": lambda d: _pick(_PLACES, d, 8),
    "address": lambda d: f"{1 + int.from_bytes(d[10:12], 'big') % 9999} {_pick(_STREETS, d, 12)} Street",
}


def keyed_digest(key: bytes, value: str | bytes) -> bytes:
    """HMAC-SHA256 of a value's text (or raw bytes): the one function behind every hash and fake."""
    return hmac.new(key, value.encode() if isinstance(value, str) else value, sha256).digest()


def _output_for(action: str) -> Callable[[bytes], str]:
    if action == "hash":
        return lambda digest: digest.hex()[:HASH_HEX_DIGITS]
    return FAKERS[action.removeprefix("fake:")]


# --- the plan for one table -----------------------------------------------------------------


@dataclass
class TablePlan:
    """How one table appears in the JSON tier. Columns are named as in the database."""

    table: str
    excluded: bool
    dropped: list[str] = field(default_factory=list)
    transformed: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # column (or "" for the table) -> why
    redacted_cells: int = 0  # hash-looking cells blanked by `apply` in columns that were kept
    key: bytes = field(default=DEFAULT_KEY, repr=False)
    value_detection: bool = True
    case_insensitive: frozenset[str] = frozenset()  # citext: equal ignoring case, so hash lowercased
    _sampled: bool = field(default=False, init=False, repr=False)

    def refine_with_sample(self, batch: pa.RecordBatch) -> None:
        """Drop kept string columns whose values look like password hashes, whatever their names."""
        self._sampled = True
        if not self.value_detection or self.excluded:
            return
        for name in self._kept_string_columns(batch):
            matches = pc.match_substring_regex(batch.column(name), ANY_HASH_FORMAT)
            if pc.any(matches).as_py():
                sample = batch.column(name)[pc.index(matches, True).as_py()].as_py()
                self.dropped.append(name)
                self.reasons[name] = f"values look like {detect_scheme(sample)} password hashes"

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The batch as the JSON tier may show it: dropped columns gone, transforms applied."""
        if self.excluded:
            raise ValueError(f"{self.table} is left out of the JSON export ({self.reasons.get('', '')})")
        if not self._sampled:
            self.refine_with_sample(batch)
        fields, arrays = [], []
        for index, source_field in enumerate(batch.schema):
            name, array = source_field.name, batch.column(index)
            if name in self.dropped:
                continue
            if name in self.transformed:
                action = self.transformed[name]
                array = self._transform(array, action, lowercase=name in self.case_insensitive)
                source_field = pa.field(name, pa.string(), metadata={b"sanitized": action.encode()})
            elif self.value_detection and _is_string(array.type):
                array = self._redact_hashes(array)
            fields.append(source_field)
            arrays.append(array)
        if not arrays:  # from_arrays([]) would lose the rows: each is still there, as {}
            return batch.select([])
        return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields, metadata=batch.schema.metadata))

    def _kept_string_columns(self, batch: pa.RecordBatch) -> list[str]:
        return [
            f.name
            for f in batch.schema
            if _is_string(f.type) and f.name not in self.dropped and f.name not in self.transformed
        ]

    def _transform(self, array: pa.Array, action: str, *, lowercase: bool) -> pa.Array:
        """Hash or fake each distinct value once, then spread the results back over the rows."""
        if not (_is_string(array.type) or pa.types.is_binary(array.type)):
            array = pc.cast(array, pa.string())
        if lowercase:
            array = pc.utf8_lower(array)
        encoded = pc.dictionary_encode(array)
        output = _output_for(action)
        mapped = pa.array(
            [output(keyed_digest(self.key, v)) for v in encoded.dictionary.to_pylist()], pa.string()
        )
        return pc.take(mapped, encoded.indices)

    def _redact_hashes(self, array: pa.Array) -> pa.Array:
        matches = pc.match_substring_regex(array, ANY_HASH_FORMAT)
        count = pc.sum(matches).as_py() or 0
        if not count:
            return array
        self.redacted_cells += count
        return pc.if_else(matches, pa.scalar(None, array.type), array)


def plan_table(
    table: Table, policy: SanitizePolicy, *, anonymize: bool, catalog: Catalog | None = None
) -> TablePlan:
    """Resolve the policy for one table; pass the catalog so foreign keys follow their referenced keys."""
    plan = TablePlan(
        table=table.qualified,
        excluded=False,
        key=policy.key,
        value_detection=policy.value_detection,
        case_insensitive=frozenset(c.name for c in table.columns if _base_name(c) == "citext"),
    )
    exclusion = policy.exclusion(table)
    if exclusion is not None:
        plan.excluded = True
        plan.reasons[""] = f"table matches {exclusion!r}"
        return plan
    actions = _column_actions(table, policy, anonymize=anonymize)
    if catalog is not None:
        _follow_referenced_keys(table, catalog, policy, actions, anonymize=anonymize)
    for name, (action, reason) in actions.items():
        if action == "drop":
            plan.dropped.append(name)
        elif action != "keep":
            plan.transformed[name] = action
        if reason:
            plan.reasons[name] = reason
    return plan


def _column_actions(table: Table, policy: SanitizePolicy, *, anonymize: bool) -> dict[str, tuple[str, str]]:
    return {
        c.name: _fit_action(table, c, *policy.column_action(table, c, anonymize=anonymize))
        for c in table.columns
    }


def _fit_action(table: Table, column: Column, action: str, reason: str) -> tuple[str, str]:
    """Adjust a rule's action to the column's type and role."""
    if action in ("keep", "drop"):
        return action, reason
    if _base_name(column) in _INTEGER_TYPES and not column.is_array and _is_id(table, column.name):
        return "keep", f"integer id column kept so the export stays joinable (policy said {action})"
    if action.startswith("fake:") and not _is_text(column):
        return "drop", f"{reason}; not a text column, so dropped instead of faked"
    return action, reason


def _follow_referenced_keys(
    table: Table,
    catalog: Catalog,
    policy: SanitizePolicy,
    actions: dict[str, tuple[str, str]],
    *,
    anonymize: bool,
) -> None:
    """Give each foreign key column the action of the key it references, so joins survive."""
    tables = catalog.by_qualified()
    for fk in table.foreign_keys:
        parent = tables.get(fk.ref_qualified)
        if parent is None:
            continue
        parent_actions = actions if parent is table else _column_actions(parent, policy, anonymize=anonymize)
        for child, referenced in zip(fk.columns, fk.ref_columns, strict=True):
            parent_action = parent_actions[referenced][0]
            if parent_action != "keep" and actions[child][0] not in ("drop", parent_action):
                actions[child] = (
                    parent_action,
                    f"references {parent.qualified}.{referenced}, which is {parent_action}",
                )


def find_plaintext_password_columns(table: Table, sample: pa.RecordBatch) -> list[str]:
    """Password-named text columns holding values that are not hashes: a security finding."""
    findings = []
    for column in table.columns:
        named_like_password = any(
            fnmatch.fnmatchcase(snake_name(column.name), p) for p in PASSWORD_COLUMN_PATTERNS
        )
        if not named_like_password or column.name not in sample.schema.names:
            continue
        values = sample.column(column.name)
        if not _is_string(values.type):
            continue
        present = pc.filter(values, pc.fill_null(pc.not_equal(values, ""), False))
        if len(present) and not pc.all(pc.match_substring_regex(present, _LOOKS_HASHED)).as_py():
            findings.append(column.name)
    return findings


def _base_name(column: Column) -> str:
    return column.base_type.rsplit(".", 1)[-1]


def _is_text(column: Column) -> bool:
    base = _base_name(column)
    return not column.is_array and (
        base in ("text", "citext", "name", "varchar") or base.startswith("character")
    )


def _is_id(table: Table, column: str) -> bool:
    """Part of a key, or named like one (`id`, `user_id`) even where no constraint says so."""
    in_keys = column in table.primary_key or any(column in u for u in table.unique_keys)
    named = snake_name(column) == "id" or snake_name(column).endswith("_id")
    return in_keys or named or any(column in fk.columns for fk in table.foreign_keys)


def _is_string(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)
