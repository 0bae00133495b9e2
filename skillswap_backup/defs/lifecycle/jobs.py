"""The `verify` and `prune` jobs: check a snapshot against its manifest (and restore it), apply retention."""

import dagster as dg
from pydantic import Field

from ...lib import copies, restore_test, retention, settings, verify
from ...lib.manifest import IncompleteSnapshot
from ...lib.settings import SettingMissing
from ..backup.manifest_asset import MANIFEST_KEY
from ..resources import BackupStorage
from ..retries import RETRY_POLICY

VERIFY_JOB = "verify"
PRUNE_JOB = "prune"
VERIFY_OP = "verify_snapshot"
PRUNE_OP = "prune_snapshots"


class VerifyConfig(dg.Config):
    snapshot: str = Field(default="", description="Snapshot partition key; empty for the newest complete snapshot.")
    restore_test: bool = Field(
        default=False,
        description="Also restore into a scratch database (NEW_DATABASE_URL's server, else DATABASE_URL's), validate, drop it.",
    )


class PruneConfig(dg.Config):
    keep: int = Field(default=0, description="Complete snapshots to keep; 0 for BACKUP_KEEP (default 8).")
    dry_run: bool = Field(default=False, description="Only report what would be deleted.")


def snapshot_or_fail(storage: BackupStorage, requested: str) -> str:
    """The requested snapshot's key (empty: the newest complete one); a Failure without retries
    when there is no such complete snapshot."""
    try:
        return verify.resolve_snapshot(storage.root, requested or None)
    except IncompleteSnapshot as error:
        raise dg.Failure(description=str(error), allow_retries=False) from None


def verify_run_config(*, snapshot: str = "", restore_test: bool = False) -> dict:
    return {"ops": {VERIFY_OP: {"config": {"snapshot": snapshot, "restore_test": restore_test}}}}


# A storage hiccup is retried; a snapshot that fails verification is a Failure without retries.
@dg.op(
    name=VERIFY_OP,
    description="Re-read every file of a snapshot and check sha256, bytes and rows against its manifest.",
    retry_policy=RETRY_POLICY,
)
def verify_snapshot_op(context: dg.OpExecutionContext, config: VerifyConfig, storage: BackupStorage) -> None:
    key = snapshot_or_fail(storage, config.snapshot)
    store = storage.store(key)
    report = verify.verify_snapshot(store)
    for problem in report.problems:
        context.log.error(f"snapshot {key}: {problem}")
    for note in report.notes:
        context.log.warning(note)
    if config.restore_test and not report.problems:
        try:
            server = restore_test.scratch_server_url()
        except SettingMissing as error:
            raise dg.Failure(description=str(error), allow_retries=False) from None
        report.restore_test = restore_test.run(store, server, log=context.log.info)
    verify.record(store, report)
    context.log_event(
        dg.AssetObservation(
            asset_key=MANIFEST_KEY,
            partition=key,
            metadata={
                "verified": report.ok,
                "files": report.files,
                "bytes": report.bytes,
                "problems": len(report.problems),
                "restore_test": "not run" if report.restore_test is None else ("passed" if report.restore_test.get("ok") else "FAILED"),
                "summary": report.summary(),
            },
        )
    )
    if not report.ok:
        raise dg.Failure(description=report.summary(), allow_retries=False)
    context.log.info(report.summary())


@dg.op(
    name=PRUNE_OP,
    description="Delete snapshots beyond the newest N in BACKUP_ROOT and every BACKUP_COPIES place, only once a newer one has verified.",
    retry_policy=RETRY_POLICY,
)
def prune_snapshots_op(context: dg.OpExecutionContext, config: PruneConfig, storage: BackupStorage) -> None:
    keep = config.keep or retention.keep_from_env()
    try:
        found = retention.places(storage.root, settings.copy_roots())
    except copies.CopyFailed as error:  # a copy destination that is BACKUP_ROOT itself
        raise dg.Failure(description=str(error), allow_retries=False) from None
    failures = retention.prune_everywhere(found, keep, dry_run=config.dry_run, log=context.log.info)
    if failures:
        # The other places are pruned already: a retry only repeats what is still to do.
        transient = any(not error.permanent for error in failures.values())
        raise dg.Failure(description="; ".join(retention.failure_lines(failures)), allow_retries=transient)


@dg.job(name=VERIFY_JOB, description="Verify a snapshot's files against its manifest; optionally restore-test it.")
def verify_job():
    verify_snapshot_op()


@dg.job(name=PRUNE_JOB, description="Apply retention in every place: keep the newest N snapshots, never losing the last verified one.")
def prune_job():
    prune_snapshots_op()
