"""The `schema` and `full_dump` assets: pg_dump files taken in the backup run's snapshot.

`schema` keeps the DDL as pg_restore splits it (pre-data: schemas, extensions, types, tables;
post-data: indexes, constraints, foreign keys, triggers) in pg_dump's custom format, plus a
readable SQL copy and the object-to-table map a partial restore needs. `full_dump` is a plain
`pg_dump -Fc` of the whole source that restores with pg_restore alone, without this project.
Both read through `pg_dump --snapshot=<the run's snapshot>`, so they match the table assets.
"""

import dagster as dg

from ...lib import dumps
from ...lib.storage import MANIFEST
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


def _build_dump_asset(*, key: dg.AssetKey, description: str, dump, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=key,
        group_name="snapshot",
        partitions_def=partitions,
        kinds={"postgres"},
        description=description,
        retry_policy=dg.RetryPolicy(max_retries=1, delay=5),
    )
    def _dump_asset(context: dg.AssetExecutionContext, source: SourceDatabase, storage: BackupStorage) -> dg.MaterializeResult:
        snapshot = source.snapshot()
        store = storage.store(context.partition_key)
        store.remove(MANIFEST)  # the folder is not a complete snapshot again until the new manifest
        result = dump(snapshot.conn, source.url, store, snapshot_id=snapshot.snapshot_id)
        context.log.info(f"{key.to_user_string()}: {sum(f.bytes for f in result.files)} bytes in {result.seconds}s")
        metadata = _metadata(result, store)
        if result.entries:
            metadata["objects"] = result.entries
        return dg.MaterializeResult(metadata=metadata)

    return _dump_asset


def build_dump_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [
        _build_dump_asset(
            key=SCHEMA_KEY,
            description="The source's DDL (pg_dump --schema-only, custom format, plus readable SQL), taken in the run's snapshot.",
            dump=dumps.backup_schema,
            partitions=partitions,
        ),
        _build_dump_asset(
            key=FULL_DUMP_KEY,
            description="A pg_dump -Fc of the whole source at the run's snapshot, restorable with plain pg_restore.",
            dump=dumps.backup_full_dump,
            partitions=partitions,
        ),
    ]
