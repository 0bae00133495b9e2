"""Data quality of snapshots: Great Expectations 1.x suites generated from the table catalog.

Importing this package is cheap: Great Expectations (and pandas) load only when a validation
or Data Docs build actually runs, never when the Dagster definitions load.

    plan_table / plan_catalog      which rules (by family) the catalog lets us state, GX-free
    validate_snapshot              run every table's suite on a SnapshotReader
    validate_database              the same suites on a live database (after a restore)
    build_data_docs                GX Data Docs HTML for the results
    text_summary                   per-table text for the CLI
"""

from __future__ import annotations

from .plan import (
    BLOCKING_FAMILIES,
    CHECK_CONSTRAINTS,
    FAMILIES,
    FOREIGN_KEYS,
    NOT_NULL,
    PRIMARY_KEY,
    ROW_COUNT,
    Rule,
    TablePlan,
    plan_catalog,
    plan_table,
)
from .readers import ParquetDirReader, PostgresReader, ReaderError, SnapshotReader, StoreReader
from .results import (
    FamilyResult,
    RuleOutcome,
    TableQuality,
    restorable,
    results_from_json,
    results_to_json,
    text_summary,
)


def validate_snapshot(catalog, reader, *, tables=None, on_table=None, **window_rows) -> list[TableQuality]:
    from .suites import validate_snapshot as run

    return run(catalog, reader, tables=tables, on_table=on_table, **window_rows)


def validate_database(catalog, url, *, expected_rows=None, tables=None) -> list[TableQuality]:
    from .suites import validate_database as run

    return run(catalog, url, expected_rows=expected_rows, tables=tables)


def build_data_docs(results, folder, *, run_name: str = "snapshot"):
    from .docs import build_data_docs as build

    return build(results, folder, run_name=run_name)


__all__ = [
    "BLOCKING_FAMILIES",
    "CHECK_CONSTRAINTS",
    "FAMILIES",
    "FOREIGN_KEYS",
    "NOT_NULL",
    "PRIMARY_KEY",
    "ROW_COUNT",
    "FamilyResult",
    "ParquetDirReader",
    "PostgresReader",
    "ReaderError",
    "Rule",
    "RuleOutcome",
    "SnapshotReader",
    "StoreReader",
    "TablePlan",
    "TableQuality",
    "build_data_docs",
    "plan_catalog",
    "plan_table",
    "restorable",
    "results_from_json",
    "results_to_json",
    "text_summary",
    "validate_database",
    "validate_snapshot",
]
