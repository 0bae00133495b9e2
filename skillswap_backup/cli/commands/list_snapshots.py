"""`list`: complete snapshots with their tables, rows and sizes, whether they verified, and
their data-quality status."""

from __future__ import annotations

from ...lib import manifest, settings, verify
from ...lib.storage import SnapshotStore


def verification_word(store: SnapshotStore) -> str:
    """restore-tested / verified / FAILED from the snapshot's verified.json, "-" when never verified."""
    found = verify.read_verification(store)
    if found is None:
        return "-"
    if not found.get("ok"):
        return "FAILED"
    return "restore-tested" if (found.get("restore_test") or {}).get("ok") else "verified"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("list", help="list complete snapshots (tables, rows, sizes, verification, data quality)")
    parser.add_argument("--tables", action="store_true", help="also show every table of every snapshot")
    parser.set_defaults(handler=run)


def run(args) -> int:
    root = settings.backup_root()
    keys = manifest.list_snapshots(root)
    if not keys:
        print(f"no complete snapshots in {root}")
        return 0
    print(f"{'snapshot':14} {'finished':26} {'tables':>6} {'rows':>10} {'bytes':>12}  {'verify':14}  quality")
    for key in keys:
        store = SnapshotStore(root, key)
        body = manifest.read_manifest(store)
        rows = sum(t["rows"] for t in body["tables"].values())
        size = sum(f["bytes"] for f in body["files"])
        status = body.get("quality", {}).get("status", "unchecked")
        print(f"{key:14} {body['finished_at']:26} {len(body['tables']):>6} {rows:>10} {size:>12}  "
              f"{verification_word(store):14}  {status}")
        if args.tables:
            for name, table in body["tables"].items():
                print(f"    {name:40} {table['rows']:>10}")
    return 0
