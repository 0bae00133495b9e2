"""The snapshot's pg_dump files: the schema (custom format + readable SQL) and the full dump.

Both dumps read inside the backup run's exported snapshot (`pg_dump --snapshot`), so they show
the same instant as the Parquet files. Each asset records what it wrote in `extras/<name>.json`,
which the manifest gathers with the table files.

Snapshot layout:
    schema/schema.dump    pg_dump --schema-only -Fc: pre-data and post-data sections for pg_restore
    schema/schema.sql     the same, as SQL for people (pg_restore's script output)
    schema/objects.json   the tables each dumped object belongs to, and sequence values
    dump/full.dump        pg_dump -Fc of the whole source: restorable with plain pg_restore
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import psycopg

from . import pg, pgdump, schema_objects
from .backup import begin_snapshot
from .storage import SnapshotStore, StoredFile

SCHEMA_DUMP = "schema/schema.dump"
SCHEMA_SQL = "schema/schema.sql"
SCHEMA_OBJECTS = "schema/objects.json"
FULL_DUMP = "dump/full.dump"
EXTRAS_DIR = "extras"


def extras_path(name: str) -> str:
    return f"{EXTRAS_DIR}/{name}.json"


@dataclass
class DumpResult:
    name: str
    snapshot_id: str
    pg_dump_version: str
    seconds: float
    files: list[StoredFile] = field(default_factory=list)
    entries: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


class _Tee:
    def __init__(self, *sinks):
        self._sinks = sinks

    def write(self, data) -> int:
        for sink in self._sinks:
            sink.write(data)
        return len(data)


def _checked_tool(conn: psycopg.Connection) -> str:
    version = pgdump.tool_version("pg_dump")
    pgdump.check_dump_version(version, conn.info.server_version)
    return f"{version[0]}.{version[1]}"


def start_schema_dump(conn: psycopg.Connection, url: str, store: SnapshotStore, *, snapshot_id: str, run) -> Future:
    """Dump the schema in the snapshot, render it as SQL and annotate its objects, handed to
    `run` (e.g. a thread pool's submit): pg_dump and pg_restore are processes of their own and
    the annotations are read on a connection of their own in the same snapshot, so all of it
    proceeds while `conn` and the run's other connections read the tables."""
    started = time.monotonic()
    tool = _checked_tool(conn)

    def dump() -> DumpResult:
        args = pgdump.dump_command(snapshot_id=snapshot_id, schema_only=True)
        # A schema-only dump is small: the copy pg_restore reads stays in memory, so no plaintext
        # copy of it ever touches the disk when the snapshot is encrypted.
        archive = io.BytesIO()
        with pg.libpq_env(url) as env, store.writer(SCHEMA_DUMP) as (out, info):
            pgdump.run_dump(args, env, _Tee(out, archive), what="the schema")
        files = [info["stored"]]
        with store.writer(SCHEMA_SQL) as (out, info):
            pgdump.run_restore(["--file=-"], _no_pg_env(), source=[archive.getvalue()], sink=out, what="schema.sql")
        files.append(info["stored"])
        listing = io.BytesIO()
        pgdump.run_restore(["--list"], _no_pg_env(), source=[archive.getvalue()], sink=listing, what="the schema's contents")
        toc = pgdump.parse_toc(listing.getvalue().decode())
        with _in_snapshot(url, snapshot_id) as reading:
            objects = schema_objects.annotate(reading, toc)
        files.append(store.write_json(SCHEMA_OBJECTS, objects))
        result = DumpResult("schema", snapshot_id, tool, round(time.monotonic() - started, 3), files, len(toc))
        store.write_json(extras_path("schema"), result.to_dict(), plaintext=True)
        return result

    return run(dump)


@contextmanager
def _in_snapshot(url: str, snapshot_id: str) -> Iterator[psycopg.Connection]:
    conn = pg.open_connection(url, purpose="source database")
    try:
        begin_snapshot(conn, snapshot_id)
        yield conn
    finally:
        conn.close()


# gzip level 1 instead of pg_dump's default 6: on the 2M-row bench database the dump takes 1.8 s
# instead of 3.8 s, while the run's own reads compete for the same cores, for 51 MB instead of
# 37 MB. Parquet is the restore's primary source; this dump is the plain pg_restore fallback.
FULL_DUMP_COMPRESSION = 1


def start_full_dump(conn: psycopg.Connection, url: str, store: SnapshotStore, *, snapshot_id: str, run) -> Future:
    """Check the pg_dump version here (it needs `conn`), then hand the dump to `run` (e.g. a
    thread pool's submit), so it can proceed while this connection reads the tables."""
    started = time.monotonic()
    tool = _checked_tool(conn)

    def dump() -> DumpResult:
        args = pgdump.dump_command(snapshot_id=snapshot_id, schema_only=False, compress=FULL_DUMP_COMPRESSION)
        with pg.libpq_env(url) as env, store.writer(FULL_DUMP) as (out, info):
            pgdump.run_dump(args, env, out, what="the whole database")
        result = DumpResult("full_dump", snapshot_id, tool, round(time.monotonic() - started, 3), [info["stored"]])
        store.write_json(extras_path("full_dump"), result.to_dict(), plaintext=True)
        return result

    return run(dump)


def _no_pg_env() -> dict[str, str]:
    return pg.tool_env()


def read_extras(store: SnapshotStore, name: str) -> dict | None:
    stored = store.stored_name(extras_path(name))
    if store.exists(stored):
        return store.read_json(stored)
    if store.exists(extras_path(name)):
        return store.read_json(extras_path(name))
    return None


def gather_extras(store: SnapshotStore, snapshot_id: str | None) -> list[dict]:
    """Every extras record of this snapshot (as written in run `snapshot_id`), for the manifest."""
    records = []
    for relpath in store.list_files():
        if not relpath.startswith(EXTRAS_DIR + "/"):
            continue
        record = store.read_json(relpath)
        if snapshot_id is None or record.get("snapshot_id") == snapshot_id:
            records.append({**record, "_path": relpath})
    return records
