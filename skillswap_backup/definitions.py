"""Dagster definitions, assembled from the catalog file (never from the live database).

Without a catalog only the jobs that need nothing but snapshot folders are defined (restore,
verify, copy, prune): that is the new machine a restore runs on, or the one left after the source
expired, where `discover` cannot run and must not be needed.

Every asset of a run executes in one process (in_process executor): the connection that
exported the run's snapshot must stay open while all tables are read, as pg_dump's does.
"""

from __future__ import annotations

import dagster as dg

from .defs.backup.dump_assets import build_dump_assets
from .defs.backup.jobs import build_backup_job
from .defs.backup.manifest_asset import build_manifest_asset
from .defs.backup.table_assets import build_table_assets
from .defs.cli_logger import cli_logger
from .defs.lifecycle import build_lifecycle_definitions
from .defs.lifecycle.copies import copy_job
from .defs.lifecycle.jobs import prune_job, verify_job
from .defs.partitions import snapshot_partitions
from .defs.quality.session import CHECKS_KEY, SnapshotChecks
from .defs.quality.wiring import build_snapshot_checks
from .defs.resources import BackupStorage, SourceDatabase
from .defs.restore import RestoreTarget, build_restore_job
from .lib import settings
from .lib.catalog import Catalog, load_catalog


def build_definitions() -> dg.Definitions:
    snapshot_jobs = _snapshot_job_definitions()
    if not settings.catalog_path().exists():
        return snapshot_jobs
    return dg.Definitions.merge(snapshot_jobs, _backup_definitions(load_catalog(settings.catalog_path())))


def _snapshot_job_definitions() -> dg.Definitions:
    return dg.Definitions(
        jobs=[build_restore_job(), verify_job, copy_job, prune_job],
        resources={
            "source": SourceDatabase(url=dg.EnvVar("DATABASE_URL")),
            "storage": BackupStorage(root=settings.backup_root(), anonymize=settings.anonymize_json()),
            "target": RestoreTarget(url=dg.EnvVar("NEW_DATABASE_URL")),
        },
        executor=dg.in_process_executor,
        loggers={"cli": cli_logger},
    )


def _backup_definitions(catalog: Catalog) -> dg.Definitions:
    partitions = snapshot_partitions()
    table_assets = build_table_assets(catalog, partitions)
    dump_assets = build_dump_assets(partitions, [key for asset in table_assets for key in asset.keys])
    upstream = [key for asset in [*table_assets, *dump_assets] for key in asset.keys]
    backup_job = build_backup_job()
    lifecycle = build_lifecycle_definitions(backup_job=backup_job, partitions=partitions)
    return dg.Definitions(
        assets=[*table_assets, *dump_assets, build_manifest_asset(catalog, partitions, upstream), *lifecycle.assets],
        jobs=[backup_job],
        asset_checks=[*lifecycle.asset_checks, *build_snapshot_checks(catalog, partitions)],
        schedules=[*lifecycle.schedules],
        sensors=[*lifecycle.sensors],
        resources={CHECKS_KEY: SnapshotChecks()},
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()


def job(name: str) -> dg.JobDefinition:
    """A job with its resources bound, for `dg.reconstructable` launches from the CLI.

    Restore, verify, copy and prune come from the snapshot jobs alone: they need no catalog, and
    building every table's assets and checks for them cost a restore ~0.1 s for nothing.
    """
    snapshot_jobs = _snapshot_job_definitions()
    if any(j.name == name for j in snapshot_jobs.jobs):
        return snapshot_jobs.resolve_job_def(name)
    return build_definitions().resolve_job_def(name)
