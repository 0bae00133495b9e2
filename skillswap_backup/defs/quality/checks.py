"""Asset checks on the table assets: the catalog's Great Expectations suites, per snapshot partition.

`build_table_checks` declares one check per family per table (`row_count`, `primary_key`,
`not_null`, `check_constraints`, `foreign_keys`; a family appears only where the catalog gives it
something to check). The checks are partitioned like the table assets (`AssetCheckSpec
.partitions_def`, a preview feature of Dagster 1.13), so each result is recorded against the
snapshot partition it judged.

By default all tables' checks run in one `multi_asset_check` step: Great Expectations costs
seconds and ~260 MB of RSS to import, paid once per step, and foreign-key checks need the parent
tables of the same snapshot anyway (the project's snapshot checks validate in a child process,
see `lib.quality.worker`). The step validates one table at a time (only the key
columns it needs), and `can_subset` lets a run or the UI execute any subset of the checks.

Row-count, primary-key and foreign-key checks are blocking with ERROR severity: a snapshot that
fails them is not a faithful copy. NOT NULL and CHECK-constraint failures are warnings.

Great Expectations is imported only where validation runs, never when definitions load.
"""

# No `from __future__ import annotations`: Dagster inspects the `context` annotation at runtime.
import warnings
from collections.abc import Callable, Iterable

import dagster as dg

from ...lib.catalog import Catalog, Table
from ...lib.quality import plan as plans
from ...lib.quality.readers import SnapshotReader
from ...lib.quality.results import FamilyResult, TableQuality, text_summary

ReaderFor = Callable[[dg.AssetCheckExecutionContext], SnapshotReader]
# May return metadata (e.g. a link to the Data Docs) to attach to every check result.
OnResults = Callable[[dg.AssetCheckExecutionContext, list[TableQuality]], "dict | None"]
# Validates the tables of the context's partition: their results, metadata for every check, and
# what to do once the results are reported (e.g. wait for reports being built), or None.
Evaluate = Callable[
    [dg.AssetCheckExecutionContext, list[Table]], "tuple[list[TableQuality], dict | None, Callable[[], None] | None]"
]


class ChecksUnavailable(Exception):
    """Raised by `reader_for` (or `evaluate`) when this run cannot read the snapshot for a legitimate reason
    (e.g. it is encrypted and no identity is configured): the checks report nothing, with a
    warning, rather than failing a snapshot they could not look at."""


def default_asset_key(table: Table) -> dg.AssetKey:
    return dg.AssetKey(table.asset_path)


def _description(family: str, table: Table, plan: plans.TablePlan) -> str:
    q = table.qualified
    rules = plan.rules_for(family)
    if family == plans.ROW_COUNT:
        return f"The snapshot of {q} holds exactly as many rows as count(*) saw in the same consistent source snapshot."
    if family == plans.PRIMARY_KEY:
        pk = ", ".join(table.primary_key)
        has_unique = any(r.kind in ("unique", "compound_unique") and r.columns != table.primary_key for r in rules)
        if not pk:
            return f"The unique keys of {q} have no duplicate values in the snapshot."
        extra = ", and its other unique keys have no duplicates" if has_unique else ""
        return f"The primary key ({pk}) of {q} is never NULL and unique in the snapshot{extra}."
    if family == plans.NOT_NULL:
        return f"The {len(rules)} NOT NULL column(s) of {q} outside its primary key hold no NULL in the snapshot."
    if family == plans.CHECK_CONSTRAINTS:
        skipped = len(plan.skipped.get(family, []))
        note = f"; {skipped} constraint(s) cannot be expressed and are listed as skipped" if skipped else ""
        return (
            f"Every row of {q} satisfies its CHECK constraints and enum labels that map onto expectations "
            f"({len(rules)} rule(s){note})."
        )
    names = ", ".join(r.foreign_key.name for r in rules) or "none checkable"
    return f"Every non-null foreign key of {q} ({names}) points at an existing parent row in the same snapshot."


def _spec(
    family: str,
    table: Table,
    plan: plans.TablePlan,
    *,
    asset_key_for: Callable[[Table], dg.AssetKey],
    by_qualified: dict[str, Table],
    partitions_def: dg.PartitionsDefinition | None,
    blocking: bool,
) -> dg.AssetCheckSpec:
    key = asset_key_for(table)
    parents: list[dg.AssetKey] = []
    if family == plans.FOREIGN_KEYS:
        for rule in plan.rules_for(family):
            parent = by_qualified.get(rule.foreign_key.ref_qualified)
            if parent is not None and asset_key_for(parent) != key and asset_key_for(parent) not in parents:
                parents.append(asset_key_for(parent))
    with warnings.catch_warnings():
        # Partitioned checks are a preview feature in Dagster 1.13; we rely on it knowingly.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(
            name=family,
            asset=key,
            description=_description(family, table, plan),
            blocking=blocking and family in plans.BLOCKING_FAMILIES,
            additional_deps=parents,
            partitions_def=partitions_def,
            metadata={"family": family, "table": table.qualified, "rules": len(plan.rules_for(family))},
        )


def _rules_markdown(family: FamilyResult) -> str:
    lines = ["| rule | expectation | result | violating rows |", "|---|---|---|---|"]
    for rule in family.rules:
        result = "passed" if rule.passed else ("error: " + rule.error if rule.error else "FAILED")
        cell = rule.description.replace("|", "\\|")
        lines.append(f"| {cell} | {rule.expectation} | {result} | {rule.unexpected_count} |")
    for note in family.skipped:
        lines.append(f"| {note.replace('|', chr(92) + '|')} | (skipped) | not checked | |")
    return "\n".join(lines)


def check_result(
    result: TableQuality, family_name: str, asset_key: dg.AssetKey, extra_metadata: dict | None = None
) -> dg.AssetCheckResult:
    """The Dagster view of one family's result, with metadata a person can act on."""
    family = result.families[family_name]
    metadata: dict[str, object] = {
        "table": result.table,
        "expected": family.expected,
        "observed": family.observed,
        "unexpected_count": family.unexpected_count,
    }
    if family_name == plans.ROW_COUNT:
        metadata["rows"] = result.rows if result.rows is not None else -1
        metadata["source_rows"] = result.source_rows if result.source_rows is not None else -1
    if family.sample:
        metadata["offending_keys"] = dg.MetadataValue.json(family.sample)
    if family.rules or family.skipped:
        metadata["rules"] = dg.MetadataValue.md(_rules_markdown(family))
    if family.skipped:
        metadata["skipped"] = "\n".join(family.skipped)
    if result.error:
        metadata["error"] = result.error
    metadata.update(extra_metadata or {})
    failed_severity = dg.AssetCheckSeverity.ERROR if family.blocking else dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=family_name,
        passed=family.passed,
        severity=dg.AssetCheckSeverity.ERROR if family.passed else failed_severity,
        metadata=metadata,
        description=None if family.passed else f"{result.table} {family_name}: {family.observed}"[:1000],
    )


def _build_step(
    catalog: Catalog,
    tables: list[Table],
    *,
    name: str,
    partitions_def: dg.PartitionsDefinition | None,
    evaluate: Evaluate,
    asset_key_for: Callable[[Table], dg.AssetKey],
    required_resource_keys: set[str],
    blocking: bool,
) -> dg.AssetChecksDefinition:
    all_plans = plans.plan_catalog(catalog)
    by_qualified = catalog.by_qualified()
    specs = [
        _spec(
            family,
            table,
            all_plans[table.qualified],
            asset_key_for=asset_key_for,
            by_qualified=by_qualified,
            partitions_def=partitions_def,
            blocking=blocking,
        )
        for table in tables
        for family in all_plans[table.qualified].families()
    ]

    @dg.multi_asset_check(
        name=name,
        specs=specs,
        can_subset=True,
        compute_kind="great_expectations",
        required_resource_keys=required_resource_keys,
        description="Great Expectations suites generated from the table catalog, run on one snapshot partition.",
    )
    def _quality(context: dg.AssetCheckExecutionContext) -> Iterable[dg.AssetCheckResult]:
        selected = set(context.selected_asset_check_keys)
        chosen = [t for t in tables if any(k.asset_key == asset_key_for(t) for k in selected)]
        try:
            results, extra, after_reporting = evaluate(context, chosen)
        except ChecksUnavailable as reason:
            context.log.warning(f"data-quality checks not run: {reason}")
            return
        context.log.info(text_summary(results))
        for table, result in zip(chosen, results):
            key = asset_key_for(table)
            for family in result.families:
                if dg.AssetCheckKey(key, family) in selected:
                    yield check_result(result, family, key, extra)
        if after_reporting is not None:
            after_reporting()

    return _quality


def in_process(catalog: Catalog, reader_for: ReaderFor, on_results: OnResults | None = None) -> Evaluate:
    """Validate in the step's own process, reading through `reader_for(context)`; then hand the
    results to `on_results` (e.g. to store them and build Data Docs)."""

    def evaluate(context: dg.AssetCheckExecutionContext, tables: list[Table]):
        results = _validate(catalog, tables, context, reader_for)
        if on_results is None:
            return results, None, None
        try:
            return results, on_results(context, results), None
        except Exception as error:  # noqa: BLE001 - the verdicts matter more than their report
            context.log.error(f"could not store the quality report: {type(error).__name__}: {error}")
            return results, {"report_error": f"{type(error).__name__}: {error}"}, None

    return evaluate


def _validate(
    catalog: Catalog, tables: list[Table], context: dg.AssetCheckExecutionContext, reader_for: ReaderFor
) -> list[TableQuality]:
    from ...lib.quality.suites import QualityValidator, failed_result

    try:
        reader = reader_for(context)
    except ChecksUnavailable:
        raise
    except Exception as error:  # noqa: BLE001 - every selected check must still report, as failed
        message = f"cannot open the snapshot: {type(error).__name__}: {error}"
        context.log.error(message)
        return [failed_result(catalog, table, message) for table in tables]
    validator = QualityValidator(catalog)
    results = []
    for table in tables:
        result = validator.validate_table(table, reader)
        verdict = "passed" if result.passed else f"failed: {', '.join(result.failed_families()) or result.error}"
        context.log.info(f"{table.qualified}: {verdict}")
        results.append(result)
    return results


def build_table_checks(
    catalog: Catalog,
    *,
    partitions_def: dg.PartitionsDefinition | None,
    reader_for: ReaderFor | None = None,
    on_results: OnResults | None = None,
    evaluate: Evaluate | None = None,
    asset_key_for: Callable[[Table], dg.AssetKey] = default_asset_key,
    required_resource_keys: Iterable[str] = (),
    blocking: bool = True,
    one_step: bool = True,
    name: str = "snapshot_quality",
) -> list[dg.AssetChecksDefinition]:
    """Asset checks for every table of `catalog`, one per family, partitioned like the tables.

    reader_for(context) gives the SnapshotReader of the run's partition (`context.partition_key`);
    on_results(context, results) receives every validated table's `TableQuality` (e.g. to store
    them and build Data Docs) before the check results are reported. Instead of both, `evaluate`
    may do the whole validation its own way (e.g. in another process). `one_step=False` makes
    one step per table instead of one for all (parallel, but each step imports GX).
    """
    common = dict(
        partitions_def=partitions_def,
        evaluate=evaluate or in_process(catalog, reader_for, on_results),
        asset_key_for=asset_key_for,
        required_resource_keys=set(required_resource_keys),
        blocking=blocking,
    )
    tables = list(catalog.tables)
    if not tables:
        return []
    if one_step:
        return [_build_step(catalog, tables, name=name, **common)]
    return [_build_step(catalog, [t], name=f"{name}_{t.op_name}", **common) for t in tables]

