"""The `manifest` asset: written last, it turns a partition folder into a complete snapshot."""

import dagster as dg

from ...lib import dumps
from ...lib import manifest as manifest_lib
from ...lib.catalog import Catalog
from ...lib.manifest import meta_path
from ...lib.quality.publish import QUALITY_JSON
from ...lib.storage import MANIFEST
from ..resources import BackupStorage, SourceDatabase

MANIFEST_KEY = dg.AssetKey(["skillswap", "manifest"])

def _current_quality(store, started_at: str) -> dict | None:
    """This run's data-quality verdict when its checks already ran (else they add it later)."""
    if not store.exists(QUALITY_JSON):
        return None
    report = store.read_json(QUALITY_JSON)
    return manifest_lib.quality_summary(report) if report["updated_at"] >= started_at else None


def build_manifest_asset(
    catalog: Catalog, partitions: dg.PartitionsDefinition, upstream: list[dg.AssetKey]
) -> dg.AssetsDefinition:
    @dg.asset(
        key=MANIFEST_KEY,
        deps=upstream,
        group_name="snapshot",
        partitions_def=partitions,
        kinds={"json"},
        description="The snapshot's manifest.json (files, sha256, rows, catalog), written last so only complete snapshots are listed.",
    )
    def manifest(context: dg.AssetExecutionContext, source: SourceDatabase, storage: BackupStorage) -> dg.MaterializeResult:
        snapshot = source.snapshot()
        store = storage.store(context.partition_key)
        stale = manifest_lib.stale_table_files(store, catalog)
        for path in stale:
            store.remove(path)
        if stale:
            context.log.info(f"removed {len(stale)} files of tables no longer in the catalog: {', '.join(stale)}")
        metas, meta_files = {}, []
        for table in catalog.tables:
            stored = meta_path(table)
            if store.exists(stored):
                metas[table.qualified] = store.read_json(stored)
                meta_files.append(manifest_lib.stored_file_dict(store.describe(stored)))
        # Non-table assets of this run (schema and full dump) record their files in extras/.
        for extra in dumps.gather_extras(store, snapshot.snapshot_id):
            meta_files += extra["files"]
            meta_files.append(manifest_lib.stored_file_dict(store.describe(extra["_path"])))
        body = manifest_lib.build_manifest(
            partition_key=context.partition_key,
            catalog=catalog,
            table_metas=metas,
            extra_files=meta_files,
            source={"database": snapshot.database, "server_version": snapshot.server_version},
            started_at=snapshot.started_at,
            encrypted=store.encrypted,
            quality=_current_quality(store, snapshot.started_at),
        )
        stored = store.write_json(MANIFEST, body, plaintext=True)
        rows = sum(t["rows"] for t in body["tables"].values())
        return dg.MaterializeResult(
            metadata={
                "path": store.url(stored.path),
                "tables": len(body["tables"]),
                "rows": rows,
                "files": len(body["files"]),
                "bytes": sum(f["bytes"] for f in body["files"]),
                "encrypted": body["encrypted"],
            }
        )

    return manifest
