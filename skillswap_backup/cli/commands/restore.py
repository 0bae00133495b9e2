"""`restore`: launch the Dagster `restore` job into NEW_DATABASE_URL and print the verified report."""

from __future__ import annotations

import os

from ...lib import pg, restore, restore_quality, restore_verify, settings
from .. import errors, rotate_options
from ..common import add_snapshot_arg, dagster_instance, ensure_database, requested_snapshot
from ..errors import CommandFailed
from ..runs import launch

errors.register(restore.RestoreError)
errors.register(restore_verify.RestoreVerificationFailed)
errors.register(restore_quality.SnapshotNotRestorable)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "restore",
        help="restore a snapshot into a new database (NEW_DATABASE_URL) and verify it",
        description="Restore a snapshot (default: the newest complete one) into the target database, "
        "then verify row counts, checksums, foreign keys and sequences against the snapshot.",
    )
    parser.add_argument("--target-url", help="target database (default: $NEW_DATABASE_URL)")
    add_snapshot_arg(parser)
    parser.add_argument("--data-only", action="store_true", help="load into tables that already exist (e.g. created by drizzle-kit push)")
    parser.add_argument("--tier", choices=restore.TIERS, help="restore only one tier; foreign-key parents are added")
    parser.add_argument("--tables", metavar="A,B", help="restore only these tables; foreign-key parents are added")
    parser.add_argument("--clean", action="store_true", help="drop and recreate (or, with --data-only, empty) exactly the restored tables")
    parser.add_argument("--from", dest="source", choices=restore.SOURCES, default="parquet",
                        help="parquet (default): per-table files; dump: pg_restore of the snapshot's full pg_dump")
    parser.add_argument("--jobs", type=int, default=2, help="parallel loads and index builds (default: 2)")
    parser.add_argument("--force", action="store_true",
                        help="restore a snapshot that failed blocking data-quality checks; the report lists the violations carried over")
    parser.add_argument("--validate-target", action="store_true",
                        help="run the snapshot's data-quality suites on the restored database even when every table's "
                        "content is proven identical to the snapshot (slower; by default the snapshot's verdict carries over)")
    rotate_options.add_arguments(parser)
    parser.set_defaults(handler=run)


def use_target_url(args) -> str:
    """Resolve the target URL and export it, so Dagster's EnvVar("NEW_DATABASE_URL") sees the override."""
    url = settings.target_url(getattr(args, "target_url", None))
    os.environ["NEW_DATABASE_URL"] = url
    return url


def _ensure_target(url: str) -> None:
    """A target database that does not exist yet is created (on servers where we may)."""
    try:
        with pg.connect(url, purpose="restore target"):
            return
    except pg.DatabaseError as error:
        if "does not exist" not in str(error):
            raise
    ensure_database(url, purpose="restore target")
    print(f"created database {pg.describe(url)}")


def report_of(result) -> dict:
    """The restore report the `verify_restore` op recorded in the run's metadata."""
    for event in result.all_events:
        if event.is_successful_output and event.step_key == "verify_restore":
            return event.step_output_data.metadata["report_json"].value
    raise CommandFailed(f"run {result.run_id} finished without a restore report; see it in the Dagster UI")


def run(args) -> int:
    url = use_target_url(args)
    rotation = rotate_options.run_config(args)
    _ensure_target(url)
    options = restore.RestoreOptions(
        snapshot=requested_snapshot(args),
        mode="data-only" if args.data_only else "full",
        tables=tuple(settings.split_list(args.tables)),
        tier=args.tier,
        clean=args.clean,
        source=args.source,
        jobs=args.jobs,
        force=args.force,
        validate_target=args.validate_target,
    )
    # The same checks the job's first step makes, here first: a refused target or an unknown
    # snapshot or table is one line, before any run starts.
    store, manifest = restore.open_snapshot(settings.backup_root(), options.snapshot)
    plan = restore.plan_restore(store, manifest, url, options)
    print(f"restoring snapshot {plan.partition_key} from {store.url()} into {plan.target} "
          f"({len(plan.tables)} tables, {plan.mode}, from {plan.source})")
    for line in restore_quality.QualityGate.from_dict(plan.quality).lines():
        print(line)
    config = {
        "snapshot": plan.partition_key,
        "mode": options.mode,
        "tables": list(options.tables),
        "tier": options.tier,
        "clean": options.clean,
        "source": options.source,
        "jobs": options.jobs,
        "force": options.force,
        "validate_target": options.validate_target,
    }
    result = launch(
        "restore",
        instance=dagster_instance(),
        tags={"skillswap/target": plan.target, "skillswap/snapshot": plan.partition_key},
        run_config={"ops": {"restore_plan": {"config": config}, **rotation}},
        what=f"restore of {plan.partition_key} into {plan.target}",
    )
    report = restore_verify.RestoreReport.from_dict(report_of(result))
    for line in report.lines():
        print(line)
    print(f"run {result.run_id} is in the Dagster UI (dagster dev -w workspace.yaml)")
    if not report.ok:
        raise CommandFailed("; ".join(report.problems))
    rotate_options.print_report(result)
    return 0
