"""The project's quality checks: snapshot storage in, `reports/` (quality.json + Data Docs) out.

The checks validate the partition's snapshot in a child process (`lib.quality.worker`), so the
backup run's own process never imports Great Expectations. The child reads the snapshot from the
`storage` resource's root, takes each table's source count from the `meta/<table>.json` the table
asset wrote, publishes the results into the snapshot folder and records the verdict in its
manifest; every check result links the Data Docs.

Failed row-count, primary-key and foreign-key checks have ERROR severity but do not block the
manifest in Dagster's sense: a snapshot of a source that itself violates a rule (orphans behind
a NOT VALID foreign key) must still be complete, so that it is recorded as not restorable in its
manifest, `backup` exits non-zero naming the checks, and `restore` refuses it unless --force.
"""

import dagster as dg

from ...lib.catalog import Catalog, Table
from ...lib.quality.worker import validate_in_child
from ..backup.table_assets import asset_key
from .checks import ChecksUnavailable, build_table_checks

STORAGE_KEY = "storage"


def build_snapshot_checks(catalog: Catalog, partitions: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    order = [t.qualified for t in catalog.tables]

    def evaluate(context: dg.AssetCheckExecutionContext, tables: list[Table]):
        storage = getattr(context.resources, STORAGE_KEY)
        store = storage.store(context.partition_key)
        keys = store.encryption
        if store.encrypted and not (keys.identities or keys.passphrase):
            raise ChecksUnavailable(
                "the snapshot is encrypted and this run has no key to read it "
                "(set BACKUP_AGE_IDENTITY; `verify` can check the snapshot later)"
            )
        outcome = validate_in_child(
            root=storage.root, partition_key=context.partition_key, catalog=catalog,
            tables=[t.qualified for t in tables], order=order, log=context.log.info,
        )
        published = outcome.published
        if "report_error" in published:
            context.log.error(f"could not store the quality report: {published['report_error']}")
            return outcome.results, {"report_error": published["report_error"]}
        context.log.info(f"quality report: {published['data_docs']} (restorable: {published['restorable']})")
        return outcome.results, {
            "data_docs": dg.MetadataValue.path(published["data_docs"]),
            "quality_json": dg.MetadataValue.path(published["quality_json"]),
        }

    return build_table_checks(
        catalog,
        partitions_def=partitions,
        evaluate=evaluate,
        asset_key_for=asset_key,
        required_resource_keys={STORAGE_KEY},
        blocking=False,
    )
