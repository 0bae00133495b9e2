"""`verify`: re-read a snapshot's files against its manifest; optionally restore it into a scratch database."""

from __future__ import annotations

from ...lib import settings, verify
from ...lib.storage import SnapshotStore
from .. import errors
from ..common import add_snapshot_arg, requested_snapshot


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "verify", help="check a snapshot's files (sha256, bytes, rows) against its manifest; --restore-test restores it too"
    )
    add_snapshot_arg(parser)
    parser.add_argument(
        "--restore-test", action="store_true",
        help="also restore into a scratch database, validate every table's rows and checksum, and drop it",
    )
    parser.add_argument(
        "--target-url",
        help="server for the scratch database (default: $NEW_DATABASE_URL's server, else $DATABASE_URL's)",
    )
    parser.set_defaults(handler=run)


def run(args) -> int:
    from ...lib import encryption, restore_test

    root = settings.backup_root()
    key = verify.resolve_snapshot(root, requested_snapshot(args))
    store = SnapshotStore(root, key, encryption_config=encryption.config_from_env())
    print(f"verifying snapshot {key} at {store.url()}")
    report = verify.verify_snapshot(store)
    for problem in report.problems:
        print(f"  {problem}")
    for note in report.notes:
        print(f"  note: {note}")
    if args.restore_test and report.problems:
        print("restore test skipped: the snapshot's files did not verify")
    if args.restore_test and not report.problems:
        server = restore_test.scratch_server_url(args.target_url)
        print(f"restore test: restoring {key} into a scratch database on {restore_test.describe(server).rsplit('/', 1)[0]}")
        report.restore_test = restore_test.run(store, server, log=lambda line: print(f"  {line}"))
    verify.record(store, report)
    if not report.ok:
        raise verify.VerifyFailed(report.summary())
    print(report.summary())
    return 0


errors.register(verify.VerifyFailed)
