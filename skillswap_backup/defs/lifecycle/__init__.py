"""Snapshot lifecycle: verify, copies, retention, schedules, freshness and source expiry.

Everything here reads snapshot folders (manifest.json, verified.json) and never the source
database, except the restore test, which writes only to a scratch database it drops.
"""

from __future__ import annotations

import dagster as dg

from .copies import build_copy_sensor
from .jobs import verify_job
from .schedules import build_schedules
from .sensors import Clock, build_sensors, build_status_checks, snapshots_asset, utc_now


def build_lifecycle_definitions(*, backup_job, partitions, clock: Clock = utc_now) -> dg.Definitions:
    """The snapshots asset and its checks, schedules and sensors, to add to the project's definitions
    (the verify, copy and prune jobs they launch are defined with restore: they need no catalog)."""
    return dg.Definitions(
        assets=[snapshots_asset()],
        asset_checks=build_status_checks(partitions),
        schedules=build_schedules(backup_job, verify_job),
        sensors=[
            *build_sensors(backup_job=backup_job, verify_job=verify_job, partitions=partitions, clock=clock),
            build_copy_sensor(backup_job),
        ],
    )
