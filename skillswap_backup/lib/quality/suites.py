"""Great Expectations 1.x suites generated from the catalog, run on one snapshot or database.

One suite per table, named by its qualified name; every expectation carries its family in
`meta`, so results fold back into the five check families. Each table is validated through an
ephemeral GX context on a pandas DataFrame of only the columns the suite needs (see `frames`).

Great Expectations is imported inside these functions only: importing it costs seconds and
~140 MB, and must never happen when the Dagster definitions load.
"""

from __future__ import annotations

import ctypes
import gc
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from ..arrow_memory import arrow_pool
from ..catalog import Catalog, Table
from . import plan as plans
from . import windows
from .frames import NUMBER_SUFFIX, Frame, as_number, build_frame, rows_at
from .plan import Rule, TablePlan
from .readers import PostgresReader, SnapshotReader
from .results import SAMPLE_LIMIT, FamilyResult, RuleOutcome, TableQuality, plain

DATASOURCE = "skillswap_snapshot"


def _expectation(rule: Rule, index: int, column: str, source_rows: int):
    import great_expectations.expectations as gxe

    common = {"meta": {"family": rule.family, "rule": index}, "notes": rule.description}
    if rule.kind == "row_count":
        return gxe.ExpectTableRowCountToEqual(value=source_rows, **common)
    if rule.kind == "not_null":
        return gxe.ExpectColumnValuesToNotBeNull(column=column, **common)
    if rule.kind in ("unique", "compound_unique", "foreign_key"):
        # The frame's derived column: "(key) unique" / "fk (parent exists)" (see frames).
        return gxe.ExpectColumnValuesToBeInSet(column=column, value_set=[True], description=rule.description, **common)
    if rule.kind == "between":
        return gxe.ExpectColumnValuesToBeBetween(
            column=column,
            min_value=rule.min_value,
            max_value=rule.max_value,
            strict_min=rule.strict_min,
            strict_max=rule.strict_max,
            **common,
        )
    if rule.kind == "in_set":
        return gxe.ExpectColumnValuesToBeInSet(column=column, value_set=list(rule.value_set), **common)
    raise ValueError(f"unknown rule kind {rule.kind}")


def _every_kind(kind: str) -> bool:
    return True


def build_suite(table: Table, plan: TablePlan, source_rows: int, frame: Frame, *, kinds: Callable[[str], bool] = _every_kind):
    """The table's ExpectationSuite, over `frame`'s columns (derived and hashed ones included);
    only the rules whose kind `kinds` accepts."""
    import great_expectations as gx

    expectations = [
        _expectation(rule, i, frame.column_for_rule.get(i, frame.col(rule.columns[0]) if rule.columns else ""), source_rows)
        for i, rule in enumerate(plan.rules)
        if kinds(rule.kind)
    ]
    return gx.ExpectationSuite(
        name=table.qualified,
        expectations=expectations,
        meta={"table": table.qualified, "skipped": [n for notes in plan.skipped.values() for n in notes]},
    )


def ephemeral_context():
    """An in-memory GX context with progress bars off and no default (temporary) docs site."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )
    from great_expectations.execution_engine import pandas_execution_engine

    # GX fingerprints every pandas batch (an MD5 over hash_pandas_object of the whole frame) for
    # its batch markers only; on string keys that costs ~200 bytes a row (≈185 MB at 1M rows).
    # There is no setting for it: the module's size threshold is the only switch.
    pandas_execution_engine.HASH_THRESHOLD = 0
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _release_memory() -> None:
    """Collect the frame's cycles and hand freed heap pages back to the system: without
    malloc_trim, glibc keeps them and RSS ratchets up table after table (≈60 MB over the 10
    tables of the 4M-row bench database)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


_memo = threading.local()


def _memoize_configurations() -> None:
    """GX rebuilds an expectation's whole configuration (a pydantic dump) each time it reads one
    of its arguments: 11,260 times for the 103 expectations of the demo snapshot's 10 tables,
    ~30% of validating a small table. Nothing changes an expectation while it is validated, so
    inside `_configurations_once` each one's configuration is built once (per thread)."""
    from great_expectations.expectations.expectation import Expectation

    if getattr(Expectation, "_built_configuration", None) is not None:
        return
    build = Expectation.configuration.fget

    def configuration(self):
        built = getattr(_memo, "built", None)
        if built is None:
            return build(self)
        found = built.get(id(self))
        if found is None or found[0] is not self:
            found = built[id(self)] = (self, build(self))
        return found[1]

    Expectation._built_configuration = build
    Expectation.configuration = property(configuration)


@contextmanager
def _configurations_once() -> Iterator[None]:
    _memoize_configurations()
    _memo.built = {}
    try:
        yield
    finally:
        _memo.built = None


def _run_suite(suite, df, result_format: dict):
    """Validate `df` against `suite` in a fresh ephemeral context: a long-lived one keeps every
    validated frame reachable (≈100 MB more RSS after the 10 tables of the 4M-row bench database).

    The batch validates the suite itself (`Batch.validate`): a ValidationDefinition would also
    store the suite, itself and a serialized copy of the result in the context, which nothing
    reads here (~20% of validating a small table)."""
    from great_expectations.core.run_identifier import RunIdentifier

    context = ephemeral_context()
    batch = (
        context.data_sources.add_pandas(DATASOURCE)
        .add_dataframe_asset(suite.name)
        .add_batch_definition_whole_dataframe("snapshot")
        .get_batch(batch_parameters={"dataframe": df})
    )
    with _configurations_once():
        result = batch.validate(suite, result_format=result_format)
    # What ValidationDefinition.run would add: the Data Docs show when the table was validated.
    run = RunIdentifier(run_time=datetime.now(timezone.utc))
    result.meta["run_id"], result.meta["validation_time"] = run, run.run_time
    return result


def warm_up() -> None:
    """Validate a one-row frame with every kind of expectation the suites use: GX loads most of
    its machinery on first use, which a process that forks per table must do once, before."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    import pandas as pd

    suite = gx.ExpectationSuite(name="warm_up", expectations=[
        gxe.ExpectTableRowCountToEqual(value=1),
        gxe.ExpectColumnValuesToNotBeNull(column="n"),
        gxe.ExpectColumnValuesToBeInSet(column="n", value_set=[1]),
        gxe.ExpectColumnValuesToBeBetween(column="n", min_value=0, max_value=2),
    ])
    _run_suite(suite, pd.DataFrame({"n": [1]}), {"result_format": "SUMMARY"})


class QualityValidator:
    """Validates tables one after another (memory: one table's key columns at a time).

    `release_memory=False` for a process that ends after the table (a forked child): returning
    the frame's memory would only cost time (~0.1 s of gc per table)."""

    def __init__(self, catalog: Catalog, *, release_memory: bool = True, window_rows: int = windows.WINDOW_ROWS):
        self.catalog = catalog
        self.plans = plans.plan_catalog(catalog)
        self.release_memory = release_memory
        self.window_rows = window_rows

    def validate_table(self, table: Table, reader: SnapshotReader) -> TableQuality:
        # Key columns are read, encoded and dropped table after table (≈60 MB less peak RSS on
        # a 1M-row table with malloc than with Arrow's default pool).
        with arrow_pool("system"):
            return self._validate_table(table, reader)

    def _validate_table(self, table: Table, reader: SnapshotReader) -> TableQuality:
        plan = self.plans.get(table.qualified) or plans.plan_table(table, self.catalog)
        result = TableQuality(table=table.qualified, asset_path=list(table.asset_path), rows=None, source_rows=None)
        try:
            result.source_rows = reader.source_row_count(table)
            result.rows = reader.row_count(table)
            if windows.needed(table, plan, reader, self.catalog, result.rows, window_rows=self.window_rows):
                frame, gx_result = self._run_windows(table, plan, reader, result.rows, result.source_rows)
            else:
                frame = build_frame(table, plan, reader, self.catalog)
        except Exception as error:  # noqa: BLE001 - any read failure becomes a failed, named result
            return failed_result(
                self.catalog, table, f"{type(error).__name__}: {error}", rows=result.rows, source_rows=result.source_rows
            )
        if frame.df is not None:
            big = len(frame.df) >= 100_000 and self.release_memory
            try:
                gx_result = self._run(table, plan, frame, result.source_rows)
            finally:
                frame.df = None
                if big:
                    _release_memory()  # return a large table's frame before the next one is read
        result.gx_result = plain(gx_result.to_json_dict())
        if frame.by_position:
            try:
                _read_back_samples(table, plan, frame, gx_result, reader)
            except Exception as error:  # noqa: BLE001 - the verdict stands without its samples
                result.error = f"offending rows could not be read back: {type(error).__name__}: {error}"
        result.families = _fold(plan, frame, gx_result, result)
        return result

    def _run(self, table: Table, plan: TablePlan, frame: Frame, source_rows: int, *, kinds: Callable[[str], bool] = _every_kind):
        result_format = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_LIMIT}
        if frame.key_columns and not frame.by_position:
            # The keys name each offending row; a unique rule's own columns show the shared value.
            named = [*frame.key_columns, *(c for r in plan.rules if r.kind in ("unique", "compound_unique") for c in r.columns)]
            result_format["unexpected_index_column_names"] = list(dict.fromkeys(frame.col(c) for c in named))
        return _run_suite(build_suite(table, plan, source_rows, frame, kinds=kinds), frame.df, result_format)

    def _run_windows(self, table: Table, plan: TablePlan, reader: SnapshotReader, rows: int, source_rows: int):
        """(the shared frame, one GX result) for a table validated in windows (see `windows`)."""
        import pandas as pd

        with tempfile.TemporaryDirectory(prefix="skillswap-checks-") as folder:
            shared, frames = windows.windowed(
                table, plan, reader, self.catalog, rows=rows, folder=Path(folder), window_rows=self.window_rows
            )
            results = []
            if any(rule.kind != "row_count" for rule in plan.rules):
                for frame in frames:
                    results.append(self._run(table, plan, frame, source_rows, kinds=lambda kind: kind != "row_count"))
                    frame.df = None
                    # GX's context holds the window's frame in reference cycles: collected now,
                    # or the windows pile up until Python's next full collection.
                    _release_memory()
        # A frame of no columns: its RangeIndex has the table's row count and holds no rows.
        counted = self._run(
            table, plan, Frame(df=pd.DataFrame(index=pd.RangeIndex(rows)), key_columns=[], column_for_rule={}),
            source_rows, kinds=lambda kind: kind == "row_count",
        )
        return shared, windows.merged(results, counted)


def failed_result(
    catalog: Catalog, table: Table, error: str, *, rows: int | None = None, source_rows: int | None = None
) -> TableQuality:
    """A table that could not be validated: every family it has fails, naming the error."""
    plan = plans.plan_table(table, catalog)
    result = TableQuality(
        table=table.qualified, asset_path=list(table.asset_path), rows=rows, source_rows=source_rows, error=error
    )
    for family in plan.families():
        result.families[family] = FamilyResult(
            family=family,
            passed=False,
            expected=_expected_text(family, plan, source_rows),
            observed=f"not validated: {error}",
            skipped=list(plan.skipped.get(family, [])),
        )
    return result


def _expected_text(family: str, plan: TablePlan, source_rows: int | None) -> str:
    rules = plan.rules_for(family)
    if family == plans.ROW_COUNT:
        return f"{source_rows if source_rows is not None else '?'} rows (count(*) in the source snapshot)"
    if not rules:
        return "nothing checkable (see skipped)"
    return "; ".join(r.description for r in rules)


def _read_back_samples(table: Table, plan: TablePlan, frame: Frame, gx_result, reader: SnapshotReader) -> None:
    """Offending rows GX named by position: read back their keys and the rules' values."""
    positions = {p for item in gx_result.results for p in ((item.result or {}).get("partial_unexpected_index_list") or [])}
    positions |= {p for shown in frame.fk_positions.values() for p in shown}
    if not positions:
        return
    columns = list(dict.fromkeys([*frame.key_columns, *(c for rule in plan.rules for c in rule.columns)]))
    frame.row_values = rows_at(reader, table, [int(p) for p in positions], columns)
    for fk in [r.foreign_key for r in plan.rules if r.kind == "foreign_key"]:
        wanted = list(dict.fromkeys([*frame.key_columns, *fk.columns]))
        frame.fk_samples[fk.name] = [
            {c: frame.row_values[p][c] for c in wanted} for p in frame.fk_positions.get(fk.name, []) if p in frame.row_values
        ]


def _sample_entry(raw, rule: Rule, column: str, frame: Frame) -> dict:
    """The offending row by its primary key (or row number), plus the rule's column values."""
    if not isinstance(raw, dict):
        values = frame.row_values.get(raw)
        if values is None:
            return {"row": plain(raw)}
        entry = {k: values[k] for k in frame.key_columns} if frame.key_columns else {"row": plain(raw)}
        for name in rule.columns:
            if name not in entry:
                # A rule that compared a number stored as text shows the number it compared.
                numeric = rule.kind in ("between", "in_set") and column.endswith(NUMBER_SUFFIX)
                entry[name] = as_number(values[name]) if numeric else values[name]
        return entry
    entry = {k: plain(raw[frame.col(k)]) for k in frame.key_columns if frame.col(k) in raw}
    for name in rule.columns:
        source = column if rule.kind in ("between", "in_set") else frame.col(name)
        if name not in entry and source in raw:
            entry[name] = plain(raw[source])
    return entry


def _violation_text(rule: Rule, count: int) -> str:
    cols = ", ".join(rule.columns)
    if rule.kind == "not_null":
        return f"{cols}: {count} NULL row(s)"
    if rule.kind in ("unique", "compound_unique"):
        return f"({cols}): {count} row(s) share a duplicated key"
    if rule.kind == "foreign_key":
        return f"{rule.foreign_key.name}: {count} orphan row(s)"
    if rule.kind in ("between", "in_set"):
        return f"{cols}: {count} row(s) violate {rule.constraint}"
    return f"{count} violating row(s)"


def _fold(plan: TablePlan, frame: Frame, gx_result, table_result: TableQuality) -> dict[str, FamilyResult]:
    """Fold expectation results into one FamilyResult per family."""
    by_rule = {}
    for item in gx_result.results:
        by_rule[int(item.expectation_config.meta["rule"])] = item
    families: dict[str, FamilyResult] = {}
    for family in plan.families():
        outcomes: list[RuleOutcome] = []
        for index, rule in enumerate(plan.rules):
            if rule.family != family:
                continue
            item = by_rule.get(index)
            column = frame.column_for_rule.get(index, "")
            outcomes.append(_outcome(rule, column, item, frame))
        passed = all(o.passed for o in outcomes)
        unexpected = sum(o.unexpected_count for o in outcomes)
        sample: list[dict] = []
        for outcome in outcomes:
            for entry in outcome.sample:
                if entry not in sample and len(sample) < SAMPLE_LIMIT:
                    sample.append(entry)
        if family == plans.ROW_COUNT:
            observed = f"{table_result.rows} rows in the snapshot"
            unexpected = abs((table_result.rows or 0) - (table_result.source_rows or 0))
        elif not outcomes:
            observed = "no rule could be checked"
        elif passed:
            observed = "no violation"
        else:
            observed = "; ".join(
                o.error or _violation_text(rule, o.unexpected_count)
                for rule, o in zip(plan.rules_for(family), outcomes)
                if not o.passed
            )
        families[family] = FamilyResult(
            family=family,
            passed=passed,
            expected=_expected_text(family, plan, table_result.source_rows),
            observed=observed,
            unexpected_count=unexpected,
            sample=sample,
            rules=outcomes,
            skipped=list(plan.skipped.get(family, [])),
        )
    return families


def _outcome(rule: Rule, column: str, item, frame: Frame) -> RuleOutcome:
    if item is None:
        return RuleOutcome(rule.description, rule.kind, passed=False, error="expectation did not run")
    info = item.exception_info or {}
    error = ""
    if info.get("raised_exception"):
        error = str(info.get("exception_message") or "expectation raised an error").splitlines()[0]
    details = item.result or {}
    if rule.kind == "foreign_key":
        sample = frame.fk_samples.get(rule.foreign_key.name, [])
    else:
        sample = [_sample_entry(raw, rule, column, frame) for raw in details.get("partial_unexpected_index_list") or []]
        unique_sample = []
        for entry in sample:
            if entry not in unique_sample:
                unique_sample.append(entry)
        sample = unique_sample
    observed = details.get("observed_value")
    return RuleOutcome(
        description=rule.description,
        expectation=item.expectation_config.type,
        passed=bool(item.success) and not error,
        unexpected_count=int(details.get("unexpected_count") or 0),
        observed=plain(observed),
        sample=sample[:SAMPLE_LIMIT],
        error=error,
    )


def validate_snapshot(
    catalog: Catalog,
    reader: SnapshotReader,
    *,
    tables: Iterable[str] | None = None,
    on_table: Callable[[TableQuality], None] | None = None,
    window_rows: int = windows.WINDOW_ROWS,
) -> list[TableQuality]:
    """Validate every table (or the named ones) of one snapshot, one table at a time; tables
    (or foreign-key parents) of more than `window_rows` rows in windows (see `windows`)."""
    validator = QualityValidator(catalog, window_rows=window_rows)
    wanted = set(tables) if tables is not None else None
    results = []
    for table in catalog.tables:
        if wanted is not None and table.qualified not in wanted:
            continue
        result = validator.validate_table(table, reader)
        if on_table is not None:
            on_table(result)
        results.append(result)
    return results


def validate_database(
    catalog: Catalog,
    url: str,
    *,
    expected_rows: Mapping[str, int] | None = None,
    tables: Iterable[str] | None = None,
) -> list[TableQuality]:
    """Validate a live database (e.g. a restore target) with the same suites: counts against
    `expected_rows` (the snapshot's source counts), keys, NOT NULL, CHECKs, foreign keys."""
    with PostgresReader.connect(url, expected_rows=expected_rows) as reader:
        return validate_snapshot(catalog, reader, tables=tables)
