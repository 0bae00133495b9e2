"""Weekly schedules: the backup of the current window, then a verify (with restore test) after it.

The backup schedule is built from the partitioned job itself, so its cron, time zone and the
partition each tick requests come from one definition: a tick at the window's start backs up
that window, the same key `skillswap-backup backup` picks at that moment.
"""

from __future__ import annotations

import os

import dagster as dg

from ..partitions import backup_cron, backup_timezone
from .jobs import verify_run_config

BACKUP_SCHEDULE = "weekly_backup"
VERIFY_SCHEDULE = "weekly_verify"
VERIFY_DELAY_HOURS = 2


def verify_cron(environ=os.environ) -> str:
    """VERIFY_CRON, or the backup's cron shifted VERIFY_DELAY_HOURS later (wrapping to the next weekday)."""
    if environ.get("VERIFY_CRON"):
        return environ["VERIFY_CRON"]
    minute, hour, day, month, weekday = backup_cron().split()
    if not hour.isdigit():
        return backup_cron()  # sub-hourly or list cadences: set VERIFY_CRON explicitly
    shifted = int(hour) + VERIFY_DELAY_HOURS
    if shifted >= 24 and not (day == "*" and weekday == "*"):
        if not (weekday.isdigit() and day == "*"):
            return backup_cron()
        weekday = str((int(weekday) + 1) % 7)
    return " ".join([minute, str(shifted % 24), day, month, weekday])


def build_schedules(backup_job, verify_job) -> list[dg.ScheduleDefinition]:
    backup = dg.build_schedule_from_partitioned_job(
        backup_job,
        name=BACKUP_SCHEDULE,
        description="Back up every table into the snapshot partition of the window that starts at each tick (BACKUP_CRON).",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        # With run retries enabled on the instance, a run whose snapshot was lost re-runs whole.
        tags={"dagster/max_retries": "1", "dagster/retry_strategy": "ALL_STEPS"},
    )
    verify = dg.ScheduleDefinition(
        name=VERIFY_SCHEDULE,
        job=verify_job,
        cron_schedule=verify_cron(),
        execution_timezone=backup_timezone(),
        run_config=verify_run_config(restore_test=True),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="After each weekly backup: verify the newest snapshot's files and restore-test it into a scratch database.",
    )
    return [backup, verify]
