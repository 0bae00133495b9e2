"""`changes`: what changed between two snapshots, per table; with --output, the changed rows too.

The weekly plan's "incremental data exports": the full snapshot stays the restore source, and
this shows (and, with --output, exports sanitized as the JSON tier is) only the rows added,
changed and removed since an earlier snapshot, by default the one just before.
"""

from __future__ import annotations

import json
from pathlib import Path

from ...lib import changes, encryption, sanitize, settings, verify
from ...lib.manifest import list_snapshots, read_manifest
from ...lib.restore import snapshot_catalog
from ...lib.storage import SnapshotStore
from ..common import add_snapshot_arg, requested_snapshot, write_whole_file
from ..errors import CommandFailed

SUMMARY_FILE = "changes.json"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "changes",
        help="rows added, changed and removed per table since an earlier snapshot; --output exports them (sanitized JSON)",
        description="Compare a snapshot (default: the newest) with an earlier one (default: the one before it). "
        "Rows are matched by primary key, or by the whole row in a table without one.",
    )
    add_snapshot_arg(parser)
    parser.add_argument("--since", metavar="KEY", help="the earlier snapshot (default: the complete one before KEY)")
    parser.add_argument(
        "-o", "--output", metavar="DIR",
        help=f"write one JSON file per changed table (the rows, sanitized) and {SUMMARY_FILE} (the counts) into DIR",
    )
    parser.set_defaults(handler=run)


def _earlier(root: str, key: str, since: str | None) -> str:
    if since is not None:
        if since == key:
            raise CommandFailed(f"--since {since} is the snapshot itself: give an earlier one")
        return verify.resolve_snapshot(root, since)
    earlier = [k for k in list_snapshots(root) if k < key]
    if not earlier:
        raise CommandFailed(f"snapshot {key} is the oldest complete one in {root}: nothing to compare it with (give --since KEY)")
    return earlier[-1]


def run(args) -> int:
    root = settings.backup_root()
    key = verify.resolve_snapshot(root, requested_snapshot(args))
    since = _earlier(root, key, args.since)
    config = encryption.config_from_env()
    old, new = SnapshotStore(root, since, encryption_config=config), SnapshotStore(root, key, encryption_config=config)
    catalogs = snapshot_catalog(read_manifest(old)), snapshot_catalog(read_manifest(new))
    output = Path(args.output) if args.output else None
    if output is not None:
        try:
            output.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CommandFailed(f"cannot create {output}: {error.strerror or error}") from None
        policy, anonymize = sanitize.load_policy(), settings.anonymize_json()
    print(f"changes from snapshot {since} to {key} (rows matched by primary key, by the whole row where a table has none):")
    print(f"{'table':40} {'before':>9} {'after':>9} {'added':>8} {'changed':>8} {'removed':>8}")
    found = []
    for before, after in changes.pairs(*catalogs):
        table = changes.compare_table(old, new, before, after)
        found.append(table)
        print(f"{table.table:40} {table.rows_before:>9} {table.rows_after:>9} {len(table.added):>8} "
              f"{len(table.changed):>8} {len(table.removed):>8}{_note(table)}")
        if output is not None and (len(table.added) or len(table.changed) or len(table.removed)):
            write_whole_file(output / f"{(after or before).file_stem}.json", lambda sink: changes.export_table(
                table, old, new, sink, policy=policy, anonymize=anonymize, catalogs=catalogs,
            ))
    totals = [sum(getattr(t, name) for t in found) for name in ("rows_before", "rows_after")]
    totals += [sum(len(getattr(t, name)) for t in found) for name in ("added", "changed", "removed")]
    print(f"{'total':40} " + " ".join(f"{n:>{w}}" for n, w in zip(totals, (9, 9, 8, 8, 8))))
    if output is not None:
        summary = {"since": since, "snapshot": key, "tables": [t.summary() for t in found]}
        write_whole_file(output / SUMMARY_FILE, lambda sink: sink.write(json.dumps(summary, indent=2).encode() + b"\n"))
        print(f"changed rows (sanitized JSON, one file per changed table) and {SUMMARY_FILE}: {output}")
    return 0


def _note(table: changes.TableChanges) -> str:
    notes = []
    if table.before is None:
        notes.append("new table")
    if table.after is None:
        notes.append("table gone")
    if table.columns_added:
        notes.append("new columns: " + ", ".join(table.columns_added))
    if table.columns_removed:
        notes.append("columns gone: " + ", ".join(table.columns_removed))
    if not table.key and table.before is not None and table.after is not None:
        notes.append("matched by whole row")
    return "  (" + "; ".join(notes) + ")" if notes else ""
