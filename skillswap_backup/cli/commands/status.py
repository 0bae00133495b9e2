"""`status`: snapshot freshness and the source database's expiry, said loudly when it matters."""

from __future__ import annotations

import sys

from ...lib import freshness, settings


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "status", help="is the newest snapshot fresh and verified; days left before SOURCE_EXPIRES_ON"
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 2 when something needs attention (stale, or expiry near without a verified final snapshot)"
    )
    parser.set_defaults(handler=run)


def run(args) -> int:
    from ...defs.lifecycle.sensors import cadence, utc_now
    from ...defs.partitions import snapshot_partitions

    root = settings.backup_root()
    now = utc_now()
    current = freshness.lifecycle_status(root, now=now, cadence=cadence(snapshot_partitions(), now))
    print(f"snapshots in {root}: {len(current.snapshots)} complete")
    newest_verified = current.newest_verified
    for info in current.snapshots[-5:]:
        state = (
            "verified + restore-tested" if info.restore_tested else "verified" if info.verified
            else "VERIFY FAILED (see verified.json)" if info.verify_failed else "not verified"
        )
        print(f"  {info.key:14} finished {info.finished_at.isoformat(timespec='minutes'):25} {state}")
    print(current.freshness_line())
    print(f"newest verified snapshot: {newest_verified.key if newest_verified else 'NONE (run `skillswap-backup verify`)'}")
    expiry = current.expiry_line()
    if current.in_expiry_window:
        banner = "!" * min(len(expiry), 100)
        print(banner, expiry, banner, sep="\n", file=sys.stdout)
    else:
        print(expiry)
    return 2 if args.strict and current.needs_attention else 0
