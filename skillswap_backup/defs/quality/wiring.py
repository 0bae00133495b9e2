"""The project's quality checks: snapshot storage in, `reports/` (quality.json + Data Docs) out.

The checks read the partition's snapshot through the `storage` resource (`BackupStorage`), take
each table's source count from the `meta/<table>.json` the table asset wrote, and publish the
results into the snapshot folder, linking the Data Docs from every check result.

Failed row-count, primary-key and foreign-key checks have ERROR severity but do not block the
manifest in Dagster's sense: a snapshot of a source that itself violates a rule (orphans behind
a NOT VALID foreign key) must still be complete, so that it is recorded as not restorable in its
manifest, `backup` exits non-zero naming the checks, and `restore` refuses it unless --force.
"""

import dagster as dg

from ...lib.catalog import Catalog, Table
from ...lib.manifest import record_quality
from ...lib.quality.publish import QUALITY_JSON, publish_reports
from ...lib.quality.readers import StoreReader
from ..backup.table_assets import asset_key, meta_path
from .checks import ChecksUnavailable, build_table_checks

STORAGE_KEY = "storage"


def _reader_for(context: dg.AssetCheckExecutionContext) -> StoreReader:
    store = getattr(context.resources, STORAGE_KEY).store(context.partition_key)
    keys = store.encryption
    if store.encrypted and not (keys.identities or keys.passphrase):
        raise ChecksUnavailable(
            "the snapshot is encrypted and this run has no key to read it "
            "(set BACKUP_AGE_IDENTITY; `verify` can check the snapshot later)"
        )

    def source_rows(table: Table) -> int:
        return int(store.read_json(meta_path(table))["source_rows"])

    return StoreReader(store, source_rows)


def build_snapshot_checks(catalog: Catalog, partitions: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    order = [t.qualified for t in catalog.tables]

    def on_results(context: dg.AssetCheckExecutionContext, results) -> dict:
        store = getattr(context.resources, STORAGE_KEY).store(context.partition_key)
        where = publish_reports(store, results, partition_key=context.partition_key, order=order)
        # Checks may finish after the manifest: the verdict goes into it either way.
        record_quality(store, store.read_json(QUALITY_JSON))
        context.log.info(f"quality report: {where['data_docs']} (restorable: {where['restorable']})")
        return {
            "data_docs": dg.MetadataValue.path(where["data_docs"]),
            "quality_json": dg.MetadataValue.path(where["quality_json"]),
        }

    return build_table_checks(
        catalog,
        partitions_def=partitions,
        reader_for=_reader_for,
        on_results=on_results,
        asset_key_for=asset_key,
        required_resource_keys={STORAGE_KEY},
        blocking=False,
    )
