"""One asset per source table, built from the catalog file.

`_build_table_asset` turns one catalog `Table` into a partitioned asset whose upstream deps are
the table's foreign-key parents, so the lineage graph in the UI is the real data model. A
materialization streams the table from the run's shared snapshot into Parquet parts (full
fidelity, the restore source) and a JSON file (sanitized, for people), then records what it
wrote in `meta/<table>.json`, which the manifest gathers.
"""

import dagster as dg

from ...lib import backup, ordering, sanitize
from ...lib.catalog import Catalog, Table
from ...lib.manifest import meta_path
from ...lib.storage import MANIFEST
from .. import retries
from ..quality.session import SnapshotChecks
from ..resources import BackupStorage, SourceDatabase
from .dump_assets import start_dumps

PREVIEW_ROWS = 5

def asset_key(table: Table) -> dg.AssetKey:
    return dg.AssetKey([_legal(part) for part in table.asset_path])

def _legal(part: str) -> str:
    """Asset key parts allow letters, digits, '_' and '-'; other characters become '_'."""
    return "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in part)

def _column_schema(table: Table) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.name,
                type=c.pg_type,
                constraints=dg.TableColumnConstraints(nullable=not c.not_null, unique=(c.name,) in table.unique_keys),
            )
            for c in table.columns
        ]
    )

def _preview_markdown(rows: list[dict]) -> str:
    if not rows:
        return "_no rows_"
    names = list(rows[0])
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for row in rows:
        cells = [str(row.get(n, "")).replace("|", "\\|").replace("\n", " ")[:60] for n in names]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)

def _build_table_asset(
    *, table: Table, parents: set[str], catalog: Catalog, partitions: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    by_name = catalog.by_qualified()

    @dg.asset(
        key=asset_key(table),
        deps=[asset_key(by_name[p]) for p in sorted(parents)],
        group_name=table.tier,
        partitions_def=partitions,
        kinds={"postgres", "parquet"},
        description=f"Snapshot of table {table.qualified} ({table.tier}) as Parquet (full fidelity) and sanitized JSON.",
        metadata={"table": table.qualified, "tier": table.tier, "dagster/column_schema": _column_schema(table)},
        retry_policy=dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL),
    )
    def _table_asset(
        context: dg.AssetExecutionContext, source: SourceDatabase, storage: BackupStorage, snapshot_checks: SnapshotChecks
    ) -> dg.MaterializeResult:
        with retries.fail_fast(f"table {table.qualified}"):
            snapshot = source.snapshot()
        store = storage.store(context.partition_key)
        # Re-running a partition replaces it: it stops being a listed snapshot until the new manifest.
        store.remove(MANIFEST)
        store.remove(store.table_dir(table))
        with retries.fail_fast(f"table {table.qualified}"):
            start_dumps(context, source, storage)
        json_plan = sanitize.plan_table(table, sanitize.load_policy(), anonymize=storage.anonymize, catalog=catalog)
        with retries.fail_fast(f"table {table.qualified}"), retries.savepoint(snapshot.conn, snapshot.reader, snapshot.side_conn):
            result = backup.backup_table(
                snapshot.conn, snapshot.reader, table, store, snapshot_id=snapshot.snapshot_id, json_plan=json_plan,
                checksum_conn=snapshot.side_conn,
            )
        # Plaintext and free of row data, so a backup host that holds only the public key can
        # still assemble the manifest; the sample rows stay in the (encrypted) JSON export.
        record = {k: v for k, v in result.to_dict().items() if k != "preview"}
        meta = store.write_json(meta_path(table), {**record, "run_id": context.run.run_id}, plaintext=True)
        snapshot_checks.table_written(context, storage, catalog, table)
        parquet = [f for f in result.files if ".parquet" in f.path]
        json_files = [f for f in result.files if f.path.startswith("json/")]
        context.log.info(f"{table.qualified}: {result.rows} rows in {result.seconds}s")
        for finding in result.findings:
            context.log.warning(f"security finding: {finding['message']}")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": result.rows,
                "dagster/column_schema": _column_schema(table),
                "bytes": sum(f.bytes for f in result.files),
                "parquet": [store.url(f.path) for f in parquet],
                "json": store.url(json_files[0].path) if json_files else "left out of JSON by the sanitize policy",
                "json_columns_dropped": ", ".join(result.json_columns_dropped) or "none",
                "checksum": result.checksum,
                "snapshot_id": result.snapshot_id,
                "seconds": result.seconds,
                "meta": store.url(meta.path),
                # Dagster's event log is stored in plaintext: rows of an encrypted snapshot stay out
                # of it unless they are anonymized.
                "preview": dg.MetadataValue.md(
                    _preview_markdown(result.preview) if storage.anonymize or not store.encrypted
                    else "_not shown: the snapshot is encrypted (anonymized rows are shown with BACKUP_ANONYMIZE=1)_"
                ),
                "security_findings": "; ".join(f["message"] for f in result.findings) or "none",
            }
        )

    return _table_asset

def build_table_assets(catalog: Catalog, partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    parents = ordering.acyclic_parents(catalog)
    return [
        _build_table_asset(table=table, parents=parents[table.qualified], catalog=catalog, partitions=partitions)
        for table in catalog.tables
    ]
