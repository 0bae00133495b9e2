"""`prune`: retention — keep the newest N complete snapshots; delete older ones only once a newer
one verified. In BACKUP_ROOT and in every BACKUP_COPIES destination, each on its own."""

from __future__ import annotations

from ...lib import retention, settings


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "prune",
        help="delete old snapshots in BACKUP_ROOT and every BACKUP_COPIES place: keep the newest N, "
        "never the newest verified one (--dry-run to preview)",
    )
    parser.add_argument("--keep", type=int, help=f"snapshots to keep (default: $BACKUP_KEEP or {retention.DEFAULT_KEEP})")
    parser.add_argument("--dry-run", action="store_true", help="show what would be deleted, delete nothing")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from ..errors import CommandFailed

    keep = args.keep if args.keep is not None else retention.keep_from_env()
    if keep < 1:
        raise CommandFailed("--keep must be 1 or more")
    found = retention.places(settings.backup_root(), settings.copy_roots())
    failures = retention.prune_everywhere(found, keep, dry_run=args.dry_run, log=print)
    if failures:
        raise CommandFailed("; ".join(retention.failure_lines(failures)))
    return 0
