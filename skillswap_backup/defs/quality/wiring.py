"""The project's quality checks: snapshot storage in, `reports/` (quality.json + Data Docs) out.

The checks validate the partition's snapshot in a child process (`lib.quality.worker`), so the
backup run's own process never imports Great Expectations. That process is the run's
`SnapshotChecks` session: it starts with the run and every table asset hands it its table, so
validation runs beside the backup; the check step finishes it. It reads the
snapshot from the `storage` resource's root, takes each table's source count from the
`meta/<table>.json` the table asset wrote, publishes the results into the snapshot folder and
records the verdict in its manifest; every check result links the Data Docs, which are built
while the results are reported.

Failed row-count, primary-key and foreign-key checks have ERROR severity but do not block the
manifest in Dagster's sense: a snapshot of a source that itself violates a rule (orphans behind
a NOT VALID foreign key) must still be complete, so that it is recorded as not restorable in its
manifest, `backup` exits non-zero naming the checks, and `restore` refuses it unless --force.
"""

import dagster as dg

from ...lib.catalog import Catalog, Table
from ...lib.quality.publish import DATA_DOCS_INDEX, QUALITY_JSON
from ..backup.table_assets import asset_key
from .checks import build_table_checks
from .session import CHECKS_KEY, SnapshotChecks

STORAGE_KEY = "storage"


def build_snapshot_checks(catalog: Catalog, partitions: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    def evaluate(context: dg.AssetCheckExecutionContext, tables: list[Table]):
        storage = getattr(context.resources, STORAGE_KEY)
        checks: SnapshotChecks = getattr(context.resources, CHECKS_KEY)
        outcome = checks.finish(storage, context.partition_key, catalog, [t.qualified for t in tables], log=context.log.info)
        store = storage.store(context.partition_key)

        def reports_published() -> None:
            published = outcome.published()
            if "report_error" in published:
                context.log.error(f"could not store the quality report: {published['report_error']}")
            else:
                context.log.info(f"quality report: {published['data_docs']} (restorable: {published['restorable']})")

        # The reports' places are known before they are written: the results are reported while
        # the worker builds them.
        return outcome.results, {
            "data_docs": dg.MetadataValue.path(store.url(DATA_DOCS_INDEX)),
            "quality_json": dg.MetadataValue.path(store.url(QUALITY_JSON)),
        }, reports_published

    return build_table_checks(
        catalog,
        partitions_def=partitions,
        evaluate=evaluate,
        asset_key_for=asset_key,
        required_resource_keys={STORAGE_KEY, CHECKS_KEY},
        blocking=False,
    )
