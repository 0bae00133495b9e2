"""`sql`: a snapshot's full dump as a plain SQL script, for `psql "$NEW_DATABASE_URL" < FILE`.

The script goes to `--output FILE` (written beside it under a temporary name and renamed when
complete, so a file of that name is always a whole script) or to stdout when that is a pipe.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ...lib import encryption, pgdump, settings, sql_script, verify
from ...lib.manifest import read_manifest
from ...lib.storage import ENCRYPTED_SUFFIX, SnapshotStore
from .. import errors
from ..common import add_snapshot_arg, requested_snapshot, write_whole_file
from ..errors import CommandFailed


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "sql",
        help="write a snapshot's full dump as a plain SQL script for psql (no owners or GRANTs, one transaction)",
        description="Render dump/full.dump as SQL: `skillswap-backup sql -o skillswap_backup.sql`, then "
        '`psql -v ON_ERROR_STOP=1 "$NEW_DATABASE_URL" -f skillswap_backup.sql`.',
    )
    add_snapshot_arg(parser)
    parser.add_argument("-o", "--output", metavar="FILE", help="where to write the script (default: stdout, when it is a pipe)")
    parser.set_defaults(handler=run)


def run(args) -> int:
    if args.output is None and sys.stdout.isatty():
        raise CommandFailed("the script would go to the terminal: give --output FILE, or pipe it (`… | psql \"$NEW_DATABASE_URL\"`)")
    root = settings.backup_root()
    key = verify.resolve_snapshot(root, requested_snapshot(args))
    store = SnapshotStore(root, key, encryption_config=encryption.config_from_env())
    manifest = read_manifest(store)
    if args.output is None:
        sql_script.write_script(store, manifest, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return 0
    target = Path(args.output)
    written = write_whole_file(target, lambda sink: sql_script.write_script(store, manifest, sink))
    print(f"wrote {target} ({written} bytes): snapshot {key}'s full dump as SQL; load it with "
          f'`psql -v ON_ERROR_STOP=1 "$NEW_DATABASE_URL" -f {target}`', file=sys.stderr)
    if any(f["path"].endswith(ENCRYPTED_SUFFIX) for f in manifest["files"]):
        print("note: the snapshot is encrypted, the script is not: it holds every value (password hashes too) in the clear",
              file=sys.stderr)
    return 0


errors.register(sql_script.ScriptFailed)
errors.register(pgdump.DumpError)
