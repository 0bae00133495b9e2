"""Freshness and expiry: warn when the newest snapshot is late; before the source expires, make sure
a final snapshot exists and has passed a restore test.

Both sensors read the clock through `clock` (tests pass a fixed one) and the snapshot folders
through the storage resource; neither connects to the source database.
"""

import warnings
from datetime import datetime, timedelta, timezone
from typing import Callable

import dagster as dg

from ...lib import freshness
from ..backup.manifest_asset import MANIFEST_KEY
from ..resources import BackupStorage
from .jobs import VERIFY_JOB, verify_run_config

FRESHNESS_SENSOR = "snapshot_freshness"
EXPIRY_SENSOR = "source_expiry"
# The collection of complete snapshots, as one asset downstream of the per-partition manifest: the
# freshness and expiry checks are about all snapshots, and living here keeps them out of backup runs.
SNAPSHOTS_KEY = dg.AssetKey(["skillswap", "lifecycle", "snapshots"])  # a table could be named "snapshots"
FRESHNESS_CHECK = "snapshot_fresh"
EXPIRY_CHECK = "final_snapshot_before_expiry"
FINAL_TAG = "skillswap/final_before_expiry"

Clock = Callable[[], datetime]

# Dagster 1.13 re-creates a sensor that targets an asset job with `owners=[]` when it resolves the
# job, and warns that `owners` is beta although nobody set it; the warning would land on the CLI's
# stderr, which must stay one line.
warnings.filterwarnings("ignore", message=r"Parameter `owners` of initializer `SensorDefinition.__init__`")


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
        asset_key=SNAPSHOTS_KEY,
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


def expiry_evaluation(current: freshness.LifecycleStatus) -> dg.AssetCheckEvaluation:
    """Passes unless the source is inside its expiry window without a restore-tested final snapshot."""
    final = current.verified_final
    return dg.AssetCheckEvaluation(
        asset_key=SNAPSHOTS_KEY,
        check_name=EXPIRY_CHECK,
        passed=not current.in_expiry_window or final is not None,
        severity=dg.AssetCheckSeverity.ERROR,
        description=current.expiry_line(),
        metadata={
            "expires_on": current.expiry.expires_on.isoformat() if current.expiry.expires_on else "not set",
            "days_left": current.days_left if current.days_left is not None else -1,
            "warn_days": current.expiry.warn_days,
            "verified_final_snapshot": final.key if final else "none",
        },
    )


def _status_check(partitions, name: str, description: str, evaluate) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=SNAPSHOTS_KEY, name=name, description=description)
    def _check(storage: BackupStorage) -> dg.AssetCheckResult:
        evaluation = evaluate(status(storage, partitions, utc_now()))
        return dg.AssetCheckResult(
            passed=evaluation.passed,
            severity=evaluation.severity,
            description=evaluation.description,
            metadata=evaluation.metadata,
        )

    return _check


def snapshots_asset() -> dg.AssetSpec:
    return dg.AssetSpec(
        SNAPSHOTS_KEY,
        deps=[MANIFEST_KEY],
        group_name="lifecycle",
        kinds={"json"},
        description="Every complete snapshot in BACKUP_ROOT: its freshness, and readiness before the source expires.",
    )


def build_status_checks(partitions) -> list[dg.AssetChecksDefinition]:
    """The checks the sensors record; also runnable by hand from the manifest's page in the UI."""
    return [
        _status_check(partitions, FRESHNESS_CHECK, "Warns when the newest complete snapshot is older than the backup cadence allows.", freshness_evaluation),
        _status_check(partitions, EXPIRY_CHECK, "Fails when SOURCE_EXPIRES_ON is near and no final snapshot has passed a restore test; says how many days are left.", expiry_evaluation),
    ]


def build_sensors(*, backup_job, verify_job, partitions, clock: Clock = utc_now) -> list[dg.SensorDefinition]:
    @dg.sensor(
        name=FRESHNESS_SENSOR,
        minimum_interval_seconds=3600,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Hourly: records the snapshot_fresh check on skillswap/lifecycle/snapshots; warns when the newest snapshot is late.",
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
        if current.expiry.expires_on is None:
            return dg.SensorResult(skip_reason=line)
        events = [expiry_evaluation(current)]
        if not current.in_expiry_window or current.verified_final is not None:
            return dg.SensorResult(skip_reason=line, asset_events=events)
        context.log.warning(line)
        expires = current.expiry.expires_on.isoformat()
        final = current.final_snapshot
        if final is None:
            key = partitions.get_partition_key_for_timestamp(now.timestamp())
            return dg.SensorResult(
                asset_events=events,
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
            asset_events=events,
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
