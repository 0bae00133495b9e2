"""`prune`: retention — keep the newest N complete snapshots; delete older ones only once a newer one verified."""

from __future__ import annotations

from ...lib import retention, settings


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "prune", help="delete old snapshots: keep the newest N, never the newest verified one (--dry-run to preview)"
    )
    parser.add_argument("--keep", type=int, help=f"snapshots to keep (default: $BACKUP_KEEP or {retention.DEFAULT_KEEP})")
    parser.add_argument("--dry-run", action="store_true", help="show what would be deleted, delete nothing")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from ..errors import CommandFailed

    keep = args.keep if args.keep is not None else retention.keep_from_env()
    if keep < 1:
        raise CommandFailed("--keep must be 1 or more")
    root = settings.backup_root()
    decisions = retention.plan(root, keep)
    if not decisions:
        print(f"no complete snapshots in {root}: nothing to prune")
        return 0
    for decision in decisions:
        print(("would " if args.dry_run and decision.delete else "") + str(decision))
    for key in retention.incomplete_folders(root):
        print(f"left alone: {key} has no manifest (a backup running or interrupted)")
    doomed = [d.key for d in decisions if d.delete]
    if args.dry_run:
        print(f"dry run: {len(doomed)} of {len(decisions)} snapshots would be deleted")
        return 0
    deleted = retention.apply(root, decisions)
    print(f"deleted {len(deleted)} of {len(decisions)} snapshots{': ' + ', '.join(deleted) if deleted else ''}")
    return 0
