"""The `restore` job: plan -> schema (pre-data) -> data -> post-data and sequences -> verify.

Non-secret choices (snapshot, mode, tables, tier, clean, source, parallelism) are run config of
the first op; the target URL reaches the run only through the NEW_DATABASE_URL environment
variable (`RestoreTarget`), so it never lands in the run's stored config. Each op re-opens the
snapshot from storage and passes on only the plan, which holds no secret. The last op puts the
restore report in the run's metadata and fails the run on any mismatch.
"""


import time
from typing import Literal

import dagster as dg
from pydantic import Field

from ...lib import integrity, restore_quality
from ...lib import restore as restore_lib
from ...lib import restore_verify
from ...lib.manifest import read_manifest
from ..resources import BackupStorage
from .resources import RestoreTarget
from .rotate import rotate_secrets

RESTORE_JOB = "restore"


class RestoreConfig(dg.Config):
    snapshot: str | None = Field(default=None, description="Partition key of the snapshot; default: the newest complete one.")
    mode: Literal["full", "data-only"] = Field(default="full", description="full: schema and data; data-only: into existing empty tables.")
    tables: list[str] = Field(default_factory=list, description="Restore only these tables (foreign-key parents are added).")
    tier: str | None = Field(default=None, description="Restore only one tier (critical, important, optional), with parents.")
    clean: bool = Field(default=False, description="Drop and recreate exactly the restored tables when the target has them.")
    source: Literal["parquet", "dump"] = Field(default="parquet", description="parquet: per-table files; dump: pg_restore of the full dump.")
    jobs: int = Field(default=2, description="Tables loaded, and post-data built, in parallel.")
    force: bool = Field(
        default=False,
        description="Restore a snapshot that failed blocking data-quality checks; the report lists the violations carried over.",
    )
    validate_target: bool = Field(
        default=False,
        description="Run the snapshot's data-quality suites on the target even when every table's content is proven identical to the snapshot.",
    )


def _open(storage: BackupStorage, plan: restore_lib.RestorePlan):
    store = storage.store(plan.partition_key)
    return store, read_manifest(store)


def _logger(context: dg.OpExecutionContext):
    return lambda message: context.log.info(message)


@dg.op(out=dg.Out(restore_lib.RestorePlan))
def restore_plan(context: dg.OpExecutionContext, config: RestoreConfig, storage: BackupStorage, target: RestoreTarget) -> restore_lib.RestorePlan:
    """Pick the snapshot and tables, and refuse a target whose restored tables already hold data."""
    store, manifest = restore_lib.open_snapshot(storage.root, config.snapshot)
    options = restore_lib.RestoreOptions(
        snapshot=config.snapshot, mode=config.mode, tables=tuple(config.tables), tier=config.tier,
        clean=config.clean, source=config.source, jobs=config.jobs, force=config.force,
        validate_target=config.validate_target,
    )
    try:
        plan = restore_lib.plan_restore(store, manifest, target.url, options)
    except restore_quality.SnapshotNotRestorable as refusal:
        raise dg.Failure(description=str(refusal), metadata={"snapshot": store.partition_key}) from None
    for line in restore_quality.QualityGate.from_dict(plan.quality).lines():
        context.log.warning(line)
    # Every file is read (and decrypted) end to end before the target is touched: a wrong key or
    # a damaged file fails here, with nothing restored, never half-way through the load.
    context.log.info(integrity.check_restore_inputs(store, manifest, plan).line())
    if plan.added_parents:
        context.log.info(f"foreign-key parents added: {', '.join(plan.added_parents)}")
    context.log.info(f"restoring {len(plan.tables)} tables of snapshot {plan.partition_key} into {plan.target}")
    return plan


@dg.op
def restore_schema(context: dg.OpExecutionContext, plan: restore_lib.RestorePlan, storage: BackupStorage, target: RestoreTarget) -> dict:
    """Create extensions and apply pre-data (or, from the full dump, run the whole pg_restore)."""
    store, manifest = _open(storage, plan)
    if plan.source == "dump":
        return {"plan": plan, "timings": {"pg_restore": restore_lib.restore_dump(store, manifest, target.url, plan, _logger(context))}}
    return {"plan": plan, "timings": {"pre_data": restore_lib.apply_schema(store, manifest, target.url, plan, _logger(context))}}


@dg.op
def restore_data(context: dg.OpExecutionContext, state: dict, storage: BackupStorage, target: RestoreTarget) -> dict:
    """Stream every table from Parquet into the target with COPY, tables in parallel."""
    plan = state["plan"]
    if plan.source == "dump":
        return {**state, "loads": []}
    store, manifest = _open(storage, plan)
    started = time.monotonic()
    loads = restore_lib.load_tables(store, manifest, target.url, plan, _logger(context))
    return {**state, "loads": loads, "timings": {**state["timings"], "load": round(time.monotonic() - started, 3)}}


@dg.op
def restore_post_data(context: dg.OpExecutionContext, state: dict, storage: BackupStorage, target: RestoreTarget) -> dict:
    """Build indexes, constraints, foreign keys and triggers, move sequences past the rows, refresh
    materialized views, and bring large objects back from the full dump."""
    plan = state["plan"]
    if plan.source == "dump":
        return state
    store, manifest = _open(storage, plan)
    seconds = restore_lib.apply_post_data(store, manifest, target.url, plan, _logger(context))
    timings = {"post_data": seconds, **restore_lib.finish_restore(store, manifest, target.url, plan, _logger(context))}
    return {**state, "timings": {**state["timings"], **timings}}


@dg.op
def verify_restore(context: dg.OpExecutionContext, state: dict, storage: BackupStorage, target: RestoreTarget) -> dg.Output[dict]:
    """Compare counts and checksums with the snapshot, check foreign keys, smoke-test writes, and give the data-quality verdict of the target."""
    plan = state["plan"]
    store, manifest = _open(storage, plan)
    report = restore_verify.verify(
        manifest, target.url, plan, state["loads"], timings=state["timings"], log=_logger(context), store=store,
        write_report=True,
    )
    metadata = {
        "snapshot": plan.partition_key,
        "target": plan.target,
        "mode": f"{plan.mode} from {plan.source}",
        "tables": len(report.tables),
        "rows": sum(t.rows for t in report.tables),
        "foreign_keys_valid": report.foreign_keys,
        "smoke_tested_tables": len(report.smoke),
        "added_parents": ", ".join(report.added_parents) or "none",
        "seconds": dict(report.timings),
        "report": dg.MetadataValue.md(report.markdown()),
        "report_json": dg.MetadataValue.json(report.to_dict()),
        "verified": report.ok,
        "data_quality": report.quality.get("status", "not run"),
        "data_quality_checks": f"{report.quality.get('passed', 0)}/{report.quality.get('checks', 0)} passed",
        "carried_over": dg.MetadataValue.json(report.carried_over + report.quality.get("carried_over", [])),
    }
    if report.quality.get("report"):
        metadata["data_quality_report"] = dg.MetadataValue.path(report.quality["report"])
    if report.quality.get("summary"):
        metadata["data_quality_summary"] = dg.MetadataValue.md(f"```\n{report.quality['summary']}\n```")
    # The per-table report is the step's `report` metadata (and what the CLI prints after the run).
    if not report.ok:
        raise dg.Failure(
            description=f"the restore into {report.target} does not match snapshot {report.partition_key}: "
            + "; ".join(report.problems),
            metadata=metadata,
        )
    return dg.Output(report.to_dict(), metadata=metadata)


def build_restore_job() -> dg.JobDefinition:
    @dg.job(
        name=RESTORE_JOB,
        description="Restore a snapshot into NEW_DATABASE_URL (pre-data, COPY from Parquet, post-data, sequences) and verify it.",
        executor_def=dg.in_process_executor,
        tags={"skillswap/kind": "restore"},
    )
    def restore():
        plan = restore_plan()
        rotate_secrets(verify_restore(restore_post_data(restore_data(restore_schema(plan)))))

    return restore
