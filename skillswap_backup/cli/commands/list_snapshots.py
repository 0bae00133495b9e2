"""`list`: complete snapshots with their tables, rows and sizes."""

from __future__ import annotations

from ...lib import manifest, settings
from ...lib.storage import SnapshotStore


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("list", help="list complete snapshots (tables, rows, sizes)")
    parser.add_argument("--tables", action="store_true", help="also show every table of every snapshot")
    parser.set_defaults(handler=run)


def run(args) -> int:
    root = settings.backup_root()
    keys = manifest.list_snapshots(root)
    if not keys:
        print(f"no complete snapshots in {root}")
        return 0
    print(f"{'snapshot':14} {'finished':26} {'tables':>6} {'rows':>10} {'bytes':>12}  status")
    for key in keys:
        body = manifest.read_manifest(SnapshotStore(root, key))
        rows = sum(t["rows"] for t in body["tables"].values())
        size = sum(f["bytes"] for f in body["files"])
        status = body.get("quality", {}).get("status", "unchecked")
        print(f"{key:14} {body['finished_at']:26} {len(body['tables']):>6} {rows:>10} {size:>12}  {status}")
        if args.tables:
            for name, table in body["tables"].items():
                print(f"    {name:40} {table['rows']:>10}")
    return 0
