"""Where the checks read data from: a snapshot's Parquet, a plain Parquet folder, or live PostgreSQL.

Validation only ever asks for a few columns of one table at a time (key columns, the columns a
CHECK names, foreign-key columns), so every reader returns just those columns; counts come from
Parquet metadata or `count(*)`, never from reading rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, runtime_checkable

import pyarrow as pa
import pyarrow.parquet as pq

from ..catalog import Table

BATCH_ROWS = 65_536


@runtime_checkable
class SnapshotReader(Protocol):
    """What validation needs from one snapshot.

    A reader may also offer `iter_batches(table, columns)` (record batches of those columns);
    validation then streams the columns it only needs a NULL mask of, instead of reading them
    whole, which keeps memory flat for wide text columns.
    """

    def read_columns(self, table: Table, columns: list[str]) -> pa.Table:
        """Only `columns`, every row of `table`."""
        ...

    def row_count(self, table: Table) -> int:
        """Rows stored for `table` (from metadata; no data read)."""
        ...

    def source_row_count(self, table: Table) -> int:
        """count(*) the backup took inside the same consistent snapshot."""
        ...


class ReaderError(Exception):
    """One clear line: which table or file could not be read, and what to do."""


def _concat(batches: list[pa.RecordBatch], schema: pa.Schema | None, columns: list[str]) -> pa.Table:
    if batches:
        return pa.Table.from_batches(batches)
    if schema is not None:
        return schema.empty_table().select(columns)
    return pa.table({c: pa.array([], pa.null()) for c in columns})


class ParquetDirReader:
    """A folder of Parquet files: `{folder}/{file_stem}.parquet`, or a folder `{folder}/{file_stem}/`
    of parts. Source counts come from `source_rows` or from `{folder}/source_rows.json`
    (qualified table name -> count)."""

    def __init__(self, folder: str | Path, source_rows: Mapping[str, int] | None = None):
        self.folder = Path(folder)
        self._source_rows = dict(source_rows) if source_rows is not None else None

    def _parts(self, table: Table) -> list[Path]:
        single = self.folder / f"{table.file_stem}.parquet"
        if single.exists():
            return [single]
        directory = self.folder / table.file_stem
        parts = sorted(directory.glob("*.parquet")) if directory.is_dir() else []
        if not parts:
            raise ReaderError(f"no Parquet data for table {table.qualified} under {self.folder}")
        return parts

    def iter_batches(self, table: Table, columns: list[str]) -> Iterator[pa.RecordBatch]:
        for part in self._parts(table):
            yield from pq.ParquetFile(part).iter_batches(batch_size=BATCH_ROWS, columns=columns)

    def read_columns(self, table: Table, columns: list[str]) -> pa.Table:
        schema = pq.read_schema(self._parts(table)[0])
        return _concat(list(self.iter_batches(table, columns)), schema, columns)

    def row_count(self, table: Table) -> int:
        return sum(pq.ParquetFile(p).metadata.num_rows for p in self._parts(table))

    def source_row_count(self, table: Table) -> int:
        if self._source_rows is None:
            path = self.folder / "source_rows.json"
            if not path.exists():
                raise ReaderError(f"no source row counts for {self.folder} (expected {path.name})")
            self._source_rows = json.loads(path.read_text())
        try:
            return int(self._source_rows[table.qualified])
        except KeyError:
            raise ReaderError(f"no source row count recorded for table {table.qualified}") from None


class StoreReader:
    """Adapts a `storage.SnapshotStore` (anything with `iter_batches`, `parquet_rows` and
    `table_parts`) to `SnapshotReader`; `source_rows` gives the count recorded at backup time."""

    def __init__(self, store, source_rows: Callable[[Table], int] | Mapping[str, int]):
        self.store = store
        self._source_rows = source_rows

    def iter_batches(self, table: Table, columns: list[str]) -> Iterator[pa.RecordBatch]:
        if not self.store.table_parts(table):
            raise ReaderError(f"snapshot {self.store.url()} has no Parquet data for table {table.qualified}")
        yield from self.store.iter_batches(table, columns=columns, batch_size=BATCH_ROWS)

    def read_columns(self, table: Table, columns: list[str]) -> pa.Table:
        parts = self.store.table_parts(table)
        if not parts:
            raise ReaderError(f"snapshot {self.store.url()} has no Parquet data for table {table.qualified}")
        schema = self.store.parquet_file(parts[0]).schema_arrow
        return _concat(list(self.iter_batches(table, columns)), schema, columns)

    def row_count(self, table: Table) -> int:
        return int(self.store.parquet_rows(table))

    def source_row_count(self, table: Table) -> int:
        if callable(self._source_rows):
            return int(self._source_rows(table))
        try:
            return int(self._source_rows[table.qualified])
        except KeyError:
            raise ReaderError(f"no source row count recorded for table {table.qualified}") from None


# Types psycopg hands back as Python values Arrow stores exactly; everything else is read as
# PostgreSQL's text form, which is all key comparison and set membership need.
_LIVE_TYPES = {
    "smallint": pa.int16(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "real": pa.float32(),
    "double precision": pa.float64(),
    "boolean": pa.bool_(),
}


class PostgresReader:
    """Reads key columns of a live database (e.g. a restore target) inside one REPEATABLE READ,
    READ ONLY transaction, so counts, keys and foreign keys are judged at one instant.

    `expected_rows` (qualified name -> count, e.g. from the snapshot's manifest) is what
    `source_row_count` answers; without it the database's own count is expected.
    """

    def __init__(self, conn, expected_rows: Mapping[str, int] | None = None, fetch_rows: int = 50_000):
        self.conn = conn
        self.expected_rows = dict(expected_rows or {})
        self.fetch_rows = fetch_rows
        self._counts: dict[str, int] = {}
        self._cursors = 0

    @classmethod
    @contextmanager
    def connect(cls, url: str, expected_rows: Mapping[str, int] | None = None) -> Iterator[PostgresReader]:
        from .. import pg

        conn = pg.open_connection(url, purpose="database to validate")
        try:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            # Columns are read by separate scans and matched by position: every scan must start
            # at the table's first row, not join another session's scan midway.
            conn.execute("SET LOCAL synchronize_seqscans = off")
            yield cls(conn, expected_rows)
        finally:
            conn.rollback()
            conn.close()

    def _types(self, table: Table, columns: list[str]) -> list[pa.DataType]:
        by_name = {c.name: c for c in table.columns}
        types = []
        for name in columns:
            column = by_name[name]
            types.append(pa.string() if column.is_array else _LIVE_TYPES.get(column.base_type, pa.string()))
        return types

    def iter_batches(self, table: Table, columns: list[str]) -> Iterator[pa.RecordBatch]:
        from psycopg import sql

        from .. import pg

        types = self._types(table, columns)
        select = sql.SQL(", ").join(
            sql.Identifier(name) if t != pa.string() else sql.SQL("{}::text").format(sql.Identifier(name))
            for name, t in zip(columns, types)
        )
        query = sql.SQL("SELECT {} FROM {}").format(select, pg.own_rows(table))
        schema = pa.schema([pa.field(n, t) for n, t in zip(columns, types)])
        self._cursors += 1
        with self.conn.cursor(name=f"ssb_quality_{self._cursors}") as cursor:
            cursor.itersize = self.fetch_rows
            cursor.execute(query)
            while rows := cursor.fetchmany(self.fetch_rows):
                yield pa.RecordBatch.from_arrays(
                    [pa.array([row[i] for row in rows], type=t) for i, t in enumerate(types)], schema=schema
                )

    def read_columns(self, table: Table, columns: list[str]) -> pa.Table:
        schema = pa.schema([pa.field(n, t) for n, t in zip(columns, self._types(table, columns))])
        batches = list(self.iter_batches(table, columns))
        return pa.Table.from_batches(batches, schema=schema) if batches else schema.empty_table()

    def row_count(self, table: Table) -> int:
        from psycopg import sql

        from .. import pg

        if table.qualified not in self._counts:
            query = sql.SQL("SELECT count(*) FROM {}").format(pg.own_rows(table))
            self._counts[table.qualified] = self.conn.execute(query).fetchone()[0]
        return self._counts[table.qualified]

    def source_row_count(self, table: Table) -> int:
        if table.qualified in self.expected_rows:
            return int(self.expected_rows[table.qualified])
        return self.row_count(table)
