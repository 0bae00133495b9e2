"""The `copy` job, and the sensor that launches it after every successful backup run.

A copy runs after the backup run has ended, not inside it: the data-quality checks add their
verdict to the manifest at the very end of the run, and a copy must carry the final manifest.
A backup started by the CLI makes its copies itself (tagged so the sensor leaves it alone):
without a running Dagster daemon nobody would launch them otherwise.
"""

import dagster as dg
from pydantic import Field

from ...lib import copies, settings
from ...lib.storage import StorageError
from ..backup.manifest_asset import MANIFEST_KEY
from ..resources import BackupStorage
from ..retries import RETRY_POLICY
from .jobs import snapshot_or_fail

COPY_JOB = "copy"
COPY_OP = "copy_snapshot"
COPY_SENSOR = "copy_after_backup"
COPIED_BY_CLI_TAG = "skillswap/copied_by_cli"
SNAPSHOT_TAG = "skillswap/snapshot"


class CopyConfig(dg.Config):
    snapshot: str = Field(default="", description="Snapshot partition key; empty for the newest complete snapshot.")
    to: str = Field(default="", description="Destinations, comma-separated (folders or fsspec URLs); empty for BACKUP_COPIES.")


def copy_run_config(*, snapshot: str = "", to: str = "") -> dict:
    return {"ops": {COPY_OP: {"config": {"snapshot": snapshot, "to": to}}}}


@dg.op(
    name=COPY_OP,
    description="Copy a complete snapshot, byte for byte, to every BACKUP_COPIES destination and verify each copy.",
    retry_policy=RETRY_POLICY,
)
def copy_snapshot_op(context: dg.OpExecutionContext, config: CopyConfig, storage: BackupStorage) -> None:
    key = snapshot_or_fail(storage, config.snapshot)
    roots = settings.split_list(config.to) or settings.copy_roots()
    if not roots:
        raise dg.Failure(description="no destination: set BACKUP_COPIES (comma-separated folders or URLs)", allow_retries=False)
    try:
        failures = copies.copy_everywhere(storage.store(key), roots, log=context.log.info)
    except copies.CopyFailed as error:  # a destination that is BACKUP_ROOT itself
        raise dg.Failure(description=str(error), allow_retries=False) from None
    context.log_event(
        dg.AssetObservation(
            asset_key=MANIFEST_KEY,
            partition=key,
            metadata={
                "copies": ", ".join(root for root in copies.destinations(storage.root, roots) if root not in failures) or "none",
                "copies_failed": ", ".join(failures) or "none",
            },
        )
    )
    if failures:
        # An unreachable store may come back; a damaged original or refused credentials will not.
        transient = any(isinstance(error, StorageError) and not error.permanent for error in failures.values())
        raise dg.Failure(description="; ".join(copies.failure_lines(failures)), allow_retries=transient)


@dg.job(name=COPY_JOB, description="Copy a snapshot, verified, to every BACKUP_COPIES destination.")
def copy_job():
    copy_snapshot_op()


def build_copy_sensor(backup_job) -> dg.SensorDefinition:
    # Every job of the code location is watched: a backup run is the `backup` job (schedule,
    # sensors, CLI) or, from the UI's "Materialize", an asset run that wrote the manifest.
    @dg.run_status_sensor(
        name=COPY_SENSOR,
        run_status=dg.DagsterRunStatus.SUCCESS,
        request_job=copy_job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="After each successful run that wrote a snapshot's manifest: copies the snapshot to BACKUP_COPIES.",
    )
    def copy_after_backup(context: dg.RunStatusSensorContext):
        run = context.dagster_run
        if run.job_name != backup_job.name and MANIFEST_KEY not in (run.asset_selection or ()):
            return dg.SkipReason(f"run {run.run_id} ({run.job_name}) wrote no snapshot manifest")
        if not settings.copy_roots():
            return dg.SkipReason("BACKUP_COPIES is not set: no copies to make")
        if run.tags.get(COPIED_BY_CLI_TAG):
            return dg.SkipReason(f"run {run.run_id} came from the CLI, which copies its snapshot itself")
        key = run.tags.get("dagster/partition", "")
        return dg.RunRequest(run_key=f"copy:{run.run_id}", run_config=copy_run_config(snapshot=key), tags={SNAPSHOT_TAG: key})

    return copy_after_backup
