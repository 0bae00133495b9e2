"""`copy`: copy complete snapshots, verified, to more places (BACKUP_COPIES, or --to)."""

from __future__ import annotations

from ...lib import copies, settings, verify
from ...lib.manifest import list_snapshots
from ...lib.storage import SnapshotStore
from .. import errors
from ..common import add_snapshot_arg, requested_snapshot
from ..errors import CommandFailed


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "copy", help="copy a snapshot (or --all) to more places, byte for byte, verified (default: $BACKUP_COPIES)"
    )
    add_snapshot_arg(parser)
    parser.add_argument("--all", action="store_true", help="copy every complete snapshot in BACKUP_ROOT")
    parser.add_argument(
        "--to", action="append", metavar="URL",
        help="destination folder or fsspec URL (s3://bucket/prefix); repeatable; default: $BACKUP_COPIES",
    )
    parser.set_defaults(handler=run)


def run(args) -> int:
    root = settings.backup_root()
    roots = args.to or settings.copy_roots()
    if not roots:
        raise CommandFailed("no destination: set BACKUP_COPIES (comma-separated folders or URLs) or pass --to")
    requested = requested_snapshot(args)
    if args.all and requested:
        raise CommandFailed("give a snapshot or --all, not both")
    keys = list_snapshots(root) if args.all else [verify.resolve_snapshot(root, requested)]
    if not keys:
        raise CommandFailed(f"no complete snapshot in {root}: nothing to copy")
    failures = []
    for key in keys:
        failures += copy_and_report(SnapshotStore(root, key), roots)
    if failures:
        raise CommandFailed("; ".join(failures))
    return 0


def copy_and_report(source: SnapshotStore, roots: list[str]) -> list[str]:
    """Copy `source` to every root, printing each copy made; the failures, one line each."""
    return copies.failure_lines(copies.copy_everywhere(source, roots, log=print))


errors.register(copies.CopyFailed)
