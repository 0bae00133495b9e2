"""A table's content checksum, computed by PostgreSQL: the row count and an order-independent sum
of 64-bit row hashes.

It is computed on both sides — on the source inside the backup snapshot, on the target after a
restore — so equal checksums mean the target holds the rows the source printed.

Two methods exist; the manifest records which one each table's checksum used:

- ``text``  (snapshots made before the field existed): every row as PostgreSQL prints it,
            ``hashtextextended(ROW(…)::text)``.
- ``typed`` (current): ``hash_record_extended`` over the row, where a column whose type's own hash
            tells apart exactly the values its text form tells apart is hashed by value (no text
            rendering: twice as fast over the demo tables), and every other column through its
            text. Types hashed through text: numeric (1.0 and 1.00 hash alike), floats (-0 and
            0), interval ('1 day' and '24 hours'), json (no hash at all), citext, arrays and the
            rest. Text columns are hashed under COLLATE "C", byte for byte even where the column's
            collation is case-insensitive.
"""

from __future__ import annotations

import re

import psycopg
from psycopg import sql

from . import pg, pgtypes
from .catalog import Column, Table

CURRENT_METHOD = "typed"
LEGACY_METHOD = "text"  # what a manifest without "checksum_method" used

_HASHED_BY_VALUE = {
    "smallint", "integer", "bigint", "boolean", "date", "uuid", "bytea",
    "timestamp without time zone", "timestamp with time zone",
}
_HASHED_AS_BYTES = {"text", "character varying"}  # collatable: hashed under COLLATE "C"


def _typmod_free(base_type: str) -> str:
    """"character varying(100)" -> "character varying", "timestamp(3) with time zone" -> "timestamp with time zone"."""
    return re.sub(r"\(\d+(,\d+)?\)", "", base_type)


def _field(column: Column) -> sql.Composable:
    ident = sql.Identifier(column.name)
    base = _typmod_free(column.base_type)
    if column.is_array:
        return sql.SQL("{}::text").format(ident)
    if base in _HASHED_BY_VALUE:
        return ident
    if base in _HASHED_AS_BYTES:
        return sql.SQL('{} COLLATE "C"').format(ident)
    return sql.SQL("{}::text").format(ident)


def checksum_sql(table: Table, method: str = CURRENT_METHOD) -> sql.Composed:
    """`SELECT count(*), <checksum text>` over `table`. `sum(bigint)` is exact (numeric result,
    accumulated in 128 bits)."""
    if method == LEGACY_METHOD:
        row_hash = sql.SQL("hashtextextended(ROW({})::text, 0)").format(
            sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns)
        )
    elif method == CURRENT_METHOD:
        # ROW() of one field is still a record; a table without columns hashes its empty rows alike.
        row_hash = sql.SQL("hash_record_extended(ROW({}), 0)").format(
            sql.SQL(", ").join(_field(c) for c in table.columns)
        )
    else:
        raise ValueError(f"unknown checksum method {method!r}: this snapshot was written by a newer skillswap-backup")
    return sql.SQL("SELECT count(*), coalesce(sum({h}), 0)::text FROM {t}").format(h=row_hash, t=pg.own_rows(table))


def measure(url: str, table: Table, method: str, *, purpose: str) -> tuple[int, str]:
    """(row count, checksum) of `table` in the database at `url`, read in the session settings the
    backup's checksums were taken in (the text forms of timestamptz arrays, ranges, … depend on them)."""
    with pg.connect(url, purpose=purpose) as conn:
        pgtypes.apply_session_settings(conn)
        count, content = conn.execute(checksum_sql(table, method)).fetchone()
    return count, content


def method_for(conn: psycopg.Connection) -> str:
    """The method a backup from this server uses: hash_record_extended needs PostgreSQL 14."""
    return CURRENT_METHOD if conn.info.server_version >= 140000 else LEGACY_METHOD


def unavailable_on(conn: psycopg.Connection, methods: set[str]) -> bool:
    """Whether this server cannot compute one of `methods`."""
    return CURRENT_METHOD in methods and method_for(conn) != CURRENT_METHOD


def method_of(entry: dict) -> str:
    """The method a manifest (or meta) table entry's checksum was computed with."""
    return entry.get("checksum_method", LEGACY_METHOD)
