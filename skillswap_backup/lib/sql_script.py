"""A snapshot's full dump as one plain SQL script: `psql "$NEW_DATABASE_URL" < skillswap_backup.sql`.

pg_restore renders `dump/full.dump` as SQL, the archive streamed from storage (decrypted on the
way when the snapshot is encrypted), the script streamed to its sink: nothing is held in memory.
The script is made for a new provider's database, as `restore --from dump` is: no owners, GRANTs,
security labels or tablespaces (the old provider's roles do not exist there), no comments on
extensions (the provider owns them), and all of it in one transaction, so a statement that fails
leaves the target as it was.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import BinaryIO

from . import dumps, integrity, pg, pgdump
from .restore import stored_path, subprocess_list
from .storage import SnapshotStore

# Entries a role that does not own the extension may not run (`COMMENT ON EXTENSION plpgsql`).
_LEFT_OUT = ("COMMENT - EXTENSION ",)


class ScriptFailed(Exception):
    """The SQL script could not be made: one line naming the snapshot and what to do."""


def write_script(store: SnapshotStore, manifest: dict, sink: BinaryIO) -> None:
    """Write the snapshot's full dump to `sink` as a SQL script for psql.

    The stored dump is checked against the manifest (sha256, and age's authentication of every
    chunk when encrypted) before pg_restore reads it, so a damaged dump is refused with one line
    instead of giving half a script."""
    stored = stored_path(manifest, dumps.FULL_DUMP)
    if stored is None:
        raise ScriptFailed(
            f"snapshot {store.partition_key} has no full dump ({dumps.FULL_DUMP}); take a new backup (`skillswap-backup backup`)"
        )
    integrity.check_files(store, manifest, [stored], outcome="no script was written")
    env = pg.tool_env()  # pg_restore only renders here: it connects nowhere
    with tempfile.TemporaryDirectory(prefix="skillswap-sql-") as tmp:
        with store.reader(stored) as head:
            chosen = [e for e in subprocess_list(head, env) if not e.text.startswith(_LEFT_OUT)]
        listing = pgdump.write_toc_list(chosen, Path(tmp) / "full.list")
        args = [*pgdump.PORTABLE_RESTORE_FLAGS, "--single-transaction", f"--use-list={listing}", "--file=-"]
        with store.reader(stored) as source:
            pgdump.run_restore(args, env, source=pgdump.iter_chunks(source), sink=sink, what="the full dump as SQL")
