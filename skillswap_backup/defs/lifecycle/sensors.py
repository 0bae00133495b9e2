"""Freshness and expiry: warn when the newest snapshot is late; before the source expires, make sure
a final snapshot exists and has passed a restore test.

Both sensors read the clock through `clock` (tests pass a fixed one) and the snapshot folders
through the storage resource; neither connects to the source database.
"""

from datetime import datetime, timedelta, timezone
from typing import Callable

import dagster as dg

from ...lib import freshness
from ..backup.manifest_asset import MANIFEST_KEY
from ..resources import BackupStorage
from .jobs import VERIFY_JOB, verify_run_config

FRESHNESS_SENSOR = "snapshot_freshness"
EXPIRY_SENSOR = "source_expiry"
FRESHNESS_CHECK = "snapshot_fresh"
FINAL_TAG = "skillswap/final_before_expiry"

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def cadence(partitions: dg.TimeWindowPartitionsDefinition, now: datetime) -> timedelta:
    """Length of the backup window containing `now`."""
    window = partitions.time_window_for_partition_key(partitions.get_partition_key_for_timestamp(now.timestamp()))
    return window.end - window.start


def status(storage: BackupStorage, partitions, now: datetime) -> freshness.LifecycleStatus:
    return freshness.lifecycle_status(storage.root, now=now, cadence=cadence(partitions, now))


def freshness_evaluation(current: freshness.LifecycleStatus) -> dg.AssetCheckEvaluation:
    newest = current.newest
    return dg.AssetCheckEvaluation(
        asset_key=MANIFEST_KEY,
        check_name=FRESHNESS_CHECK,
        passed=current.fresh,
        severity=dg.AssetCheckSeverity.WARN,
        description=current.freshness_line(),
        metadata={
            "newest_snapshot": newest.key if newest else "none",
            "age_hours": round(current.age.total_seconds() / 3600, 1) if newest else -1,
            "allowed_hours": round(current.allowed_age.total_seconds() / 3600, 1),
            "snapshots": len(current.snapshots),
        },
    )


def build_freshness_check(partitions) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=MANIFEST_KEY,
        name=FRESHNESS_CHECK,
        description="Warns when the newest complete snapshot is older than the backup cadence allows.",
    )
    def snapshot_fresh(storage: BackupStorage) -> dg.AssetCheckResult:
        evaluation = freshness_evaluation(status(storage, partitions, utc_now()))
        return dg.AssetCheckResult(
            passed=evaluation.passed,
            severity=evaluation.severity,
            description=evaluation.description,
            metadata=evaluation.metadata,
        )

    return snapshot_fresh


def build_sensors(*, backup_job, verify_job, partitions, clock: Clock = utc_now) -> list[dg.SensorDefinition]:
    @dg.sensor(
        name=FRESHNESS_SENSOR,
        minimum_interval_seconds=3600,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Hourly: records the snapshot_fresh check on the manifest; warns when the newest snapshot is late.",
    )
    def snapshot_freshness(context: dg.SensorEvaluationContext, storage: BackupStorage) -> dg.SensorResult:
        current = status(storage, partitions, clock())
        line = current.freshness_line()
        if not current.fresh:
            context.log.warning(line)
        return dg.SensorResult(skip_reason=line, asset_events=[freshness_evaluation(current)])

    @dg.sensor(
        name=EXPIRY_SENSOR,
        jobs=[backup_job, verify_job],
        minimum_interval_seconds=900,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Before SOURCE_EXPIRES_ON (EXPIRY_WARN_DAYS ahead): launches a final backup, then its verify with restore test, once each.",
    )
    def source_expiry(context: dg.SensorEvaluationContext, storage: BackupStorage) -> dg.SensorResult:
        now = clock()
        current = status(storage, partitions, now)
        line = current.expiry_line()
        if not current.in_expiry_window:
            return dg.SensorResult(skip_reason=line)
        context.log.warning(line)
        expires = current.expiry.expires_on.isoformat()
        if current.verified_final is not None:
            return dg.SensorResult(skip_reason=line)
        final = current.final_snapshot
        if final is None:
            key = partitions.get_partition_key_for_timestamp(now.timestamp())
            return dg.SensorResult(
                run_requests=[
                    dg.RunRequest(
                        run_key=f"final-backup:{expires}",
                        job_name=backup_job.name,
                        partition_key=key,
                        tags={FINAL_TAG: expires},
                    )
                ]
            )
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"final-verify:{expires}:{final.key}",
                    job_name=VERIFY_JOB,
                    run_config=verify_run_config(snapshot=final.key, restore_test=True),
                    tags={FINAL_TAG: expires},
                )
            ]
        )

    return [snapshot_freshness, source_expiry]
