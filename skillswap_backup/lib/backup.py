"""Stream one table out of a consistent snapshot into Parquet parts and a sanitized JSON file.

Data path: binary `COPY (SELECT …) TO STDOUT` decoded by ADBC (`table_reader`) -> record batches
-> Parquet row groups. Nothing holds more than a few batches of a table in memory. Parquet is
split into parts of bounded size so an encrypted part can be decrypted in memory on restore
without memory growing with the table.

Consistency: one connection opens a REPEATABLE READ, READ ONLY transaction and exports its
snapshot (`pg_export_snapshot()`), exactly as pg_dump does; the reading connection, the checksum
connection and the pg_dump-based assets all read inside that snapshot. If the snapshot is gone,
reads fail; nothing falls back to an unsynchronized read.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from psycopg import sql

from . import json_export, pgtypes, sanitize
from .arrow_memory import arrow_pool
from .catalog import Table
from .checksum import LEGACY_METHOD, checksum_sql, method_for
from .storage import SnapshotStore, StoredFile
from .table_reader import SnapshotReader

PART_BYTES = 64 * 1024 * 1024  # roll to a new Parquet part past this many bytes
JSON_PREVIEW_ROWS = 5
PREVIEW_VALUE_LENGTH = 200  # characters (bytes of bytea) of a value a preview shows


class SnapshotLost(Exception):
    pass


class SchemaDrift(Exception):
    pass


@dataclass
class TableBackup:
    table: str
    rows: int
    source_rows: int
    checksum: str
    snapshot_id: str
    seconds: float
    files: list[StoredFile] = field(default_factory=list)
    json_columns_dropped: list[str] = field(default_factory=list)
    json_excluded: bool = False
    preview: list[dict] = field(default_factory=list)
    findings: list[dict] = field(default_factory=list)  # security findings, e.g. plaintext passwords
    checksum_method: str = LEGACY_METHOD  # what metas written before the field hold

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TableBackup:
        return cls(**{**data, "files": [StoredFile(**f) for f in data["files"]]})


def begin_snapshot(conn: psycopg.Connection, snapshot_id: str | None = None) -> str:
    """Start the snapshot transaction (importing `snapshot_id` when given); return its id."""
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    if snapshot_id is None:
        return conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
    try:
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot_id)))
    except psycopg.Error as error:
        raise SnapshotLost(
            f"the backup snapshot {snapshot_id} is no longer available ({error.diag.message_primary}); "
            "re-run the whole partition"
        ) from None
    return snapshot_id


_LIVE_COLUMNS_SQL = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a
WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""


def check_drift(conn: psycopg.Connection, table: Table) -> None:
    """Fail loudly when the live table no longer matches the catalog it was discovered as."""
    ident = sql.Identifier(table.schema, table.name).as_string(conn)
    found = conn.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass(%s)", (ident,)).fetchone()
    if found is None:
        raise SchemaDrift(
            f"table {table.qualified} is in the catalog but not in the database (dropped or renamed "
            "since discovery); run `skillswap-backup discover`"
        )
    if found[0] != table.partitioned:
        # Which rows are the table's own depends on it (see `pg.own_rows`): never guess.
        raise SchemaDrift(
            f"table {table.qualified} is {'now' if found[0] else 'no longer'} partitioned (or the catalog "
            "predates partitioning support); run `skillswap-backup discover` and back up again"
        )
    live = dict(conn.execute(_LIVE_COLUMNS_SQL, (ident,)).fetchall())
    known = {c.name: c.pg_type for c in table.columns}
    added = [c for c in live if c not in known]
    removed = [c for c in known if c not in live]
    retyped = [f"{c} ({known[c]} -> {live[c]})" for c in known if c in live and live[c] != known[c]]
    if added or removed or retyped:
        parts = [
            f"{label}: {', '.join(names)}"
            for label, names in (("added", added), ("removed", removed), ("changed type", retyped))
            if names
        ]
        raise SchemaDrift(
            f"schema drift in {table.qualified} since discovery ({'; '.join(parts)}); "
            "run `skillswap-backup discover` and back up again"
        )


class _CountingWriter:
    """Counts plaintext bytes written, so parts can be cut at a size whatever the encryption."""

    def __init__(self, sink):
        self._sink = sink
        self.size = 0
        self.closed = False

    def write(self, data) -> int:
        self._sink.write(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        pass


def _fixed_width(type_: pa.DataType) -> bool:
    return pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_boolean(type_) or pa.types.is_temporal(type_)


class _PartWriter:
    """Parquet parts of bounded size: part-00000.parquet, part-00001.parquet, …"""

    def __init__(self, store: SnapshotStore, table: Table, schema: pa.Schema):
        self.store, self.table, self.schema = store, table, schema
        self.files: list[StoredFile] = []
        self._open_part = None  # (context manager, info, counting sink, ParquetWriter, rows)

    def _start(self) -> None:
        relpath = f"{self.store.table_dir(self.table)}/part-{len(self.files):05d}.parquet"
        context = self.store.writer(relpath)
        handle, info = context.__enter__()
        sink = _CountingWriter(handle)
        # No dictionary pages: building a dictionary per column chunk is half of the writer's
        # time, and zstd finds the repeats anyway. On the 2M-row bench tables: skills 0.14 ->
        # 0.07 CPU-s and 7.3 -> 4.4 MB, users 0.17 -> 0.12 s and 10.0 -> 9.3 MB.
        # Min/max statistics only for fixed-width columns: for text and bytea the writer copies
        # the extreme values of every page and chunk (one 50 MB bytea value: ~300 MB more peak
        # memory), and nothing here filters on them.
        fixed_width = [f.name for f in self.schema if _fixed_width(f.type)]
        writer = pq.ParquetWriter(
            sink, self.schema, compression="zstd", use_dictionary=False, write_statistics=fixed_width or False
        )
        self._open_part = [context, info, sink, writer, 0]

    def _finish_part(self) -> None:
        context, info, _, writer, rows = self._open_part
        self._open_part = None
        writer.close()
        context.__exit__(None, None, None)
        self.files.append(StoredFile(**{**asdict(info["stored"]), "rows": rows}))

    def write(self, batch: pa.RecordBatch) -> None:
        if self._open_part is None:
            self._start()
        self._open_part[3].write_batch(batch)
        self._open_part[4] += batch.num_rows
        if self._open_part[2].size >= PART_BYTES:
            self._finish_part()

    def finish(self) -> list[StoredFile]:
        if self._open_part is None and not self.files:
            self._start()  # an empty table still gets one part, carrying its schema
        if self._open_part is not None:
            self._finish_part()
        return self.files

    def abort(self, error: BaseException) -> None:
        if self._open_part is not None:
            context = self._open_part[0]
            self._open_part = None
            context.__exit__(type(error), error, None)


class _JsonWriter:
    """A JSON array, one sanitized row object per line: readable, valid JSON, written as a stream."""

    def __init__(self, store: SnapshotStore, table: Table):
        self._context = store.writer(f"json/{table.file_stem}.json")
        self._handle, self._info = self._context.__enter__()
        self._handle.write(b"[")
        self._first = True
        self.preview: list[dict] = []

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        # Rows end with ",\n"; the array's first row is preceded by "\n" and the last comma is
        # taken back in finish(), which keeps the file one valid JSON array.
        self._handle.write(b"\n" if self._first else b",\n")
        if len(self.preview) < JSON_PREVIEW_ROWS:
            shown = _shortened(batch.slice(0, JSON_PREVIEW_ROWS - len(self.preview)))
            self.preview += [json.loads(line) for line in json_export.batch_lines(shown)]
        block = json_export.batch_bytes(batch, ",\n")
        self._handle.write(block[:-2])
        self._first = False

    def finish(self) -> StoredFile:
        self._handle.write(b"\n]\n")
        self._context.__exit__(None, None, None)
        return self._info["stored"]

    def abort(self, error: BaseException) -> None:
        self._context.__exit__(type(error), error, None)


def _shortened(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch with long text and bytea values cut to their start: a preview shows a few
    rows, and a row holding one 60 MB value would otherwise be copied whole, several times."""
    columns = []
    for column in batch.columns:
        if pa.types.is_string(column.type):
            column = pc.utf8_slice_codeunits(column, 0, PREVIEW_VALUE_LENGTH)
        elif pa.types.is_binary(column.type):
            column = pc.binary_slice(column, 0, PREVIEW_VALUE_LENGTH)
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


def backup_table(
    conn: psycopg.Connection,
    reader: SnapshotReader,
    table: Table,
    store: SnapshotStore,
    *,
    snapshot_id: str,
    json_plan,
    checksum_conn: psycopg.Connection | None = None,
) -> TableBackup:
    """Write `table` as `reader` reads it; `conn` (checks) and `reader` are in the same snapshot.

    Three things overlap (Arrow and psycopg release the GIL): the main thread reads batches
    and writes Parquet, one worker renders and writes JSON, and — given `checksum_conn`, another
    connection in the same snapshot — PostgreSQL computes the content checksum meanwhile.
    """
    with arrow_pool("jemalloc"):
        return _backup_table(
            conn, reader, table, store, snapshot_id=snapshot_id, json_plan=json_plan, checksum_conn=checksum_conn
        )


def _backup_table(conn, reader, table, store, *, snapshot_id, json_plan, checksum_conn) -> TableBackup:
    started = time.monotonic()
    check_drift(conn, table)
    schema = pgtypes.arrow_schema(table)
    parts = _PartWriter(store, table, schema)
    json_out = None if json_plan.excluded else _JsonWriter(store, table)
    checksum_method = method_for(conn)
    checksum_query = checksum_sql(table, checksum_method)
    rows = 0
    plaintext_passwords: list[str] = []
    pending: list[Future] = []
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"backup-{table.name}") as pool:
        checksum = pool.submit(lambda: checksum_conn.execute(checksum_query).fetchone()) if checksum_conn else None
        try:
            for batch in reader.batches(table):
                if json_out is not None:
                    shown = pgtypes.table_columns(batch)
                    if rows == 0:
                        json_plan.refine_with_sample(shown)
                    # JSON writes stay in order: each waits for the previous one.
                    pending.append(pool.submit(_write_json, json_out, json_plan, shown, pending[-1] if pending else None))
                    if len(pending) > 2:
                        pending.pop(0).result()  # bound the batches in flight
                parts.write(batch)
                rows += batch.num_rows
                plaintext_passwords += [
                    c for c in sanitize.find_plaintext_password_columns(table, batch) if c not in plaintext_passwords
                ]
            for future in pending:
                future.result()
            files = parts.finish()
            if json_out is not None:
                files.append(json_out.finish())
        except BaseException as error:
            for future in pending:
                future.cancel()
            parts.abort(error)
            if json_out is not None:
                json_out.abort(error)
            raise
        source_rows, content_checksum = (checksum.result() if checksum else conn.execute(checksum_query).fetchone())
    return TableBackup(
        table=table.qualified,
        rows=rows,
        source_rows=source_rows,
        checksum=content_checksum,
        snapshot_id=snapshot_id,
        seconds=round(time.monotonic() - started, 3),
        files=files,
        json_columns_dropped=list(json_plan.dropped),
        json_excluded=json_plan.excluded,
        preview=json_out.preview if json_out is not None else [],
        findings=[plaintext_password_finding(table, column) for column in plaintext_passwords],
        checksum_method=checksum_method,
    )


def plaintext_password_finding(table: Table, column: str) -> dict:
    """A password-named column holding values that are not password hashes."""
    return {
        "kind": "plaintext_password",
        "table": table.qualified,
        "column": column,
        "message": f"{table.qualified}.{column} looks like it stores passwords in plaintext (values that are "
        "not password hashes); hash them in the app (bcrypt, scrypt or argon2) and rotate them",
    }


def _write_json(json_out: _JsonWriter, json_plan, batch: pa.RecordBatch, previous: Future | None) -> None:
    if previous is not None:
        previous.result()
    json_out.write(json_plan.apply(batch))
