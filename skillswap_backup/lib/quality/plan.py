"""Which data-quality rules apply to a table, derived from the catalog alone.

This module is pure (no Great Expectations, no pandas): the Dagster definitions use it to know
which check families each table has without paying for importing GX, and `suites` turns the
same rules into expectations. Every rule belongs to one family; the families are fixed so
people, the UI and the CLI speak the same words.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..catalog import Catalog, ForeignKey, Table
from .constraints import RangeRule, SetRule, translate_check

ROW_COUNT = "row_count"
PRIMARY_KEY = "primary_key"
NOT_NULL = "not_null"
CHECK_CONSTRAINTS = "check_constraints"
FOREIGN_KEYS = "foreign_keys"
FAMILIES = (ROW_COUNT, PRIMARY_KEY, NOT_NULL, CHECK_CONSTRAINTS, FOREIGN_KEYS)
# A snapshot failing these cannot be restored faithfully (missing rows, key or FK violations).
BLOCKING_FAMILIES = frozenset({ROW_COUNT, PRIMARY_KEY, FOREIGN_KEYS})


@dataclass(frozen=True)
class Rule:
    family: str
    kind: str  # row_count | unique | compound_unique | not_null | between | in_set | foreign_key
    columns: tuple[str, ...]
    description: str
    min_value: float | int | None = None
    max_value: float | int | None = None
    strict_min: bool = False
    strict_max: bool = False
    value_set: tuple = ()
    foreign_key: ForeignKey | None = None
    constraint: str = ""  # the CHECK constraint or enum type the rule came from


@dataclass
class TablePlan:
    table: Table
    rules: list[Rule] = field(default_factory=list)
    # family -> human sentences saying what is not checked and why
    skipped: dict[str, list[str]] = field(default_factory=dict)

    def families(self) -> list[str]:
        """Families with at least one rule or a skipped one worth reporting, in fixed order."""
        present = {r.family for r in self.rules} | {f for f, notes in self.skipped.items() if notes}
        return [f for f in FAMILIES if f in present]

    def skip(self, family: str, note: str) -> None:
        self.skipped.setdefault(family, []).append(note)

    def rules_for(self, family: str) -> list[Rule]:
        return [r for r in self.rules if r.family == family]


def _cols(columns: tuple[str, ...]) -> str:
    return ", ".join(columns)


def plan_table(table: Table, catalog: Catalog | None = None) -> TablePlan:
    """Every rule the catalog lets us state about `table`."""
    plan = TablePlan(table=table)
    rules = plan.rules
    rules.append(
        Rule(ROW_COUNT, "row_count", (), f"{table.qualified} holds as many rows as count(*) in the source snapshot")
    )

    pk = table.primary_key
    for column in pk:
        rules.append(Rule(PRIMARY_KEY, "not_null", (column,), f"primary-key column {column} is never NULL"))
    if len(pk) == 1:
        rules.append(Rule(PRIMARY_KEY, "unique", pk, f"primary key ({pk[0]}) is unique"))
    elif pk:
        rules.append(Rule(PRIMARY_KEY, "compound_unique", pk, f"primary key ({_cols(pk)}) is unique as a whole"))
    for key in table.unique_keys:
        if tuple(key) == tuple(pk):
            continue
        kind = "unique" if len(key) == 1 else "compound_unique"
        rules.append(Rule(PRIMARY_KEY, kind, tuple(key), f"unique key ({_cols(key)}) has no duplicate (NULLs excepted)"))

    for column in table.columns:
        if column.not_null and column.name not in pk:
            rules.append(Rule(NOT_NULL, "not_null", (column.name,), f"NOT NULL column {column.name} holds no NULL"))

    names = {c.name for c in table.columns}
    for check in table.checks:
        translation = translate_check(check.name, check.definition)
        missing = sorted({r.column for r in translation.rules} - names)
        if not translation.translated or missing:
            reason = translation.skipped_reason or f"refers to unknown column(s) {', '.join(missing)}"
            plan.skip(CHECK_CONSTRAINTS, f"CHECK {check.name} not checked ({reason}): {check.definition}")
            continue
        for rule in translation.rules:
            if isinstance(rule, RangeRule):
                rules.append(
                    Rule(
                        CHECK_CONSTRAINTS,
                        "between",
                        (rule.column,),
                        f"{_range_text(rule)} (CHECK {check.name})",
                        min_value=rule.min_value,
                        max_value=rule.max_value,
                        strict_min=rule.strict_min,
                        strict_max=rule.strict_max,
                        constraint=check.name,
                    )
                )
            elif isinstance(rule, SetRule):
                rules.append(
                    Rule(
                        CHECK_CONSTRAINTS,
                        "in_set",
                        (rule.column,),
                        f"{rule.column} is one of {_set_text(rule.values)} (CHECK {check.name})",
                        value_set=rule.values,
                        constraint=check.name,
                    )
                )
    for column in table.columns:
        if column.type_kind == "e" and column.enum_values:
            if column.is_array:
                plan.skip(CHECK_CONSTRAINTS, f"enum array column {column.name} ({column.pg_type}) not checked against its labels")
                continue
            rules.append(
                Rule(
                    CHECK_CONSTRAINTS,
                    "in_set",
                    (column.name,),
                    f"{column.name} is a label of enum {column.pg_type}: {_set_text(column.enum_values)}",
                    value_set=tuple(column.enum_values),
                    constraint=column.pg_type,
                )
            )

    tables = catalog.by_qualified() if catalog is not None else {table.qualified: table}
    for fk in table.foreign_keys:
        parent = tables.get(fk.ref_qualified)
        if parent is None:
            plan.skip(
                FOREIGN_KEYS,
                f"FOREIGN KEY {fk.name} not checked: parent {fk.ref_qualified} is not in the catalog's backed-up tables"
            )
            continue
        note = " (NOT VALID in the source: old rows may legitimately violate it)" if not fk.validated else ""
        rules.append(
            Rule(
                FOREIGN_KEYS,
                "foreign_key",
                fk.columns,
                f"every non-null ({_cols(fk.columns)}) exists in {fk.ref_qualified}({_cols(fk.ref_columns)}) "
                f"[{fk.name}]{note}",
                foreign_key=fk,
            )
        )
    return plan


def plan_catalog(catalog: Catalog) -> dict[str, TablePlan]:
    return {t.qualified: plan_table(t, catalog) for t in catalog.tables}


def _range_text(rule: RangeRule) -> str:
    low = "" if rule.min_value is None else f"{rule.min_value} {'<' if rule.strict_min else '<='} "
    high = "" if rule.max_value is None else f" {'<' if rule.strict_max else '<='} {rule.max_value}"
    return f"{low}{rule.column}{high}".strip()


def _set_text(values, limit: int = 12) -> str:
    shown = ", ".join(repr(v) for v in list(values)[:limit])
    more = f", … ({len(values)} in all)" if len(values) > limit else ""
    return "{" + shown + more + "}"
