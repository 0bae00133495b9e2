"""Snapshots are time-window partitions matching the backup cadence (weekly by default)."""

from __future__ import annotations

import os

import dagster as dg

DEFAULT_CRON = "0 3 * * 0"  # weekly, Sunday 03:00, as the user's plan asks
DEFAULT_START = "2026-01-04"


def backup_cron() -> str:
    return os.environ.get("BACKUP_CRON") or DEFAULT_CRON


def backup_timezone() -> str:
    return os.environ.get("BACKUP_TIMEZONE") or "UTC"


def snapshot_partitions() -> dg.TimeWindowPartitionsDefinition:
    """One partition per cadence window; end_offset=1 exposes the current window so a backup can run now."""
    cron = backup_cron()
    # Sub-daily cadences need the time in the key to keep keys unique.
    daily_or_slower = cron.split()[0].isdigit() and cron.split()[1].isdigit()
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule=cron,
        start=os.environ.get("BACKUP_PARTITIONS_START") or DEFAULT_START,
        fmt="%Y-%m-%d" if daily_or_slower else "%Y-%m-%d-%H%M",
        timezone=backup_timezone(),
        end_offset=1,
    )


def current_partition_key(partitions: dg.TimeWindowPartitionsDefinition) -> str:
    """The window containing now (the last key, because of end_offset=1)."""
    return partitions.get_last_partition_key()
