"""The `backup` job: every asset of one snapshot partition, in one process, one snapshot."""

from __future__ import annotations

import dagster as dg

BACKUP_JOB = "backup"


def build_backup_job() -> dg.UnresolvedAssetJobDefinition:
    # Partitioned like its assets: Dagster infers the snapshot partitions from the selection.
    return dg.define_asset_job(
        BACKUP_JOB,
        selection=dg.AssetSelection.groups("critical", "important", "optional", "snapshot"),
        description="Back up every table (and the snapshot's manifest) for one partition, in one consistent snapshot.",
    )
