"""The `schema` and `full_dump` assets: pg_dump files taken in the backup run's snapshot.

`schema` keeps the DDL as pg_restore splits it (pre-data: schemas, extensions, types, tables;
post-data: indexes, constraints, foreign keys, triggers) in pg_dump's custom format, plus a
readable SQL copy and the object-to-table map a partial restore needs. `full_dump` is a plain
`pg_dump -Fc` of the whole source that restores with pg_restore alone, without this project.
Both read through `pg_dump --snapshot=<the run's snapshot>`, so they match the table assets.
"""

from concurrent.futures import Future

import dagster as dg

from ...lib import dumps
from ...lib.storage import MANIFEST
from .. import retries
from ..resources import BackupStorage, SourceDatabase

SCHEMA_KEY = dg.AssetKey(["skillswap", "schema"])
FULL_DUMP_KEY = dg.AssetKey(["skillswap", "full_dump"])


def _metadata(result: dumps.DumpResult, store) -> dict:
    return {
        "files": [store.url(f.path) for f in result.files],
        "bytes": sum(f.bytes for f in result.files),
        "seconds": result.seconds,
        "pg_dump_version": result.pg_dump_version,
        "snapshot_id": result.snapshot_id,
        "encrypted": any(f.encrypted for f in result.files),
    }


_STARTERS = {SCHEMA_KEY: dumps.start_schema_dump, FULL_DUMP_KEY: dumps.start_full_dump}


def start_dumps(context: dg.AssetExecutionContext, source: SourceDatabase, storage: BackupStorage) -> None:
    """Launch this run's pg_dumps in the background, once each, for those the run materializes.

    Every asset of a backup run calls this as soon as it holds the snapshot, so pg_dump (its own
    process) reads the schema and the whole database while the tables are read; the dump assets
    come last in the run and only collect what their pg_dump wrote.
    """
    for key in _STARTERS:
        _start_dump(context, source, storage, key)


def _start_dump(
    context: dg.AssetExecutionContext, source: SourceDatabase, storage: BackupStorage, key: dg.AssetKey,
    *, always: bool = False,
) -> Future | None:
    selection = context.run.asset_selection
    # No (or an empty) selection means the whole job, both dumps included.
    if not always and selection and key not in selection:
        return None

    def start(pool) -> Future:  # called once per run and dump
        snapshot = source.snapshot()
        store = storage.store(context.partition_key)
        return _STARTERS[key](snapshot.conn, source.url, store, snapshot_id=snapshot.snapshot_id, run=pool.submit)

    return source.in_background(key.to_user_string(), start)


def _dump_asset_metadata(key: dg.AssetKey, result: dumps.DumpResult, store, context) -> dg.MaterializeResult:
    context.log.info(f"{key.to_user_string()}: {sum(f.bytes for f in result.files)} bytes in {result.seconds}s")
    metadata = _metadata(result, store)
    if result.entries:
        metadata["objects"] = result.entries
    return dg.MaterializeResult(metadata=metadata)


def build_dump_assets(partitions: dg.PartitionsDefinition, table_keys: list[dg.AssetKey]) -> list[dg.AssetsDefinition]:
    # Both are downstream of the tables only so that they are collected last: their pg_dumps
    # started with the run's first asset and have been running beside the table reads.
    @dg.asset(
        key=SCHEMA_KEY,
        deps=table_keys,
        group_name="snapshot",
        partitions_def=partitions,
        kinds={"postgres"},
        description="The source's DDL (pg_dump --schema-only, custom format, plus readable SQL), taken in the run's snapshot.",
        retry_policy=dg.RetryPolicy(max_retries=1, delay=5),
    )
    def schema(context: dg.AssetExecutionContext, source: SourceDatabase, storage: BackupStorage) -> dg.MaterializeResult:
        store = storage.store(context.partition_key)
        store.remove(MANIFEST)  # the folder is not a complete snapshot again until the new manifest
        with retries.fail_fast("the schema dump"):
            result = _start_dump(context, source, storage, SCHEMA_KEY, always=True).result()
        return _dump_asset_metadata(SCHEMA_KEY, result, store, context)

    @dg.asset(
        key=FULL_DUMP_KEY,
        deps=table_keys,
        group_name="snapshot",
        partitions_def=partitions,
        kinds={"postgres"},
        description="A pg_dump -Fc of the whole source at the run's snapshot, restorable with plain pg_restore.",
        retry_policy=dg.RetryPolicy(max_retries=1, delay=5),
    )
    def full_dump(context: dg.AssetExecutionContext, source: SourceDatabase, storage: BackupStorage) -> dg.MaterializeResult:
        store = storage.store(context.partition_key)
        store.remove(MANIFEST)
        with retries.fail_fast("the full dump"):
            result = _start_dump(context, source, storage, FULL_DUMP_KEY, always=True).result()
        return _dump_asset_metadata(FULL_DUMP_KEY, result, store, context)

    return [schema, full_dump]
