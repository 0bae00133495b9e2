"""Type mapping, one case per PostgreSQL type: the value PostgreSQL prints survives
the backup's read (ADBC, binary COPY) -> Arrow -> Parquet -> CSV -> COPY in, compared as
PostgreSQL's own text."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skillswap_backup.lib import pgtypes
from skillswap_backup.lib.catalog import Column, Table
from skillswap_backup.lib.table_reader import SnapshotReader

from .pgtools import scratch_database

import psycopg

CASES = [
    # (PostgreSQL type, literal values as PostgreSQL reads them, expected encoding)
    ("smallint", ["-32768", "32767", "0"], "native"),
    ("integer", ["-2147483648", "2147483647"], "native"),
    ("bigint", ["-9223372036854775808", "9223372036854775807"], "native"),
    ("numeric(40,20)", ["12345678901234567890.12345678901234567890", "-0.00000000000000000001"], "pg_text"),
    ("numeric", ["NaN", "1e-30", "123456789012345678901234567890.5"], "pg_text"),
    ("real", ["NaN", "Infinity", "-Infinity", "-0", "3.4028235e38", "1.0000001"], "native"),
    ("double precision", ["NaN", "-Infinity", "-0", "2.2250738585072014e-308", "0.1"], "native"),
    ("text", ["", "unicode ☃ \"q\" \\ back\ttab\nnl\r", "\\.", "NULL", "\\N"], "native"),
    ("character varying(5)", ["", "abcde"], "native"),
    ("character(4)", ["ab", ""], "native"),
    ("bytea", ["\\x", "\\x00ff00", "\\x5c2e"], "bytea"),
    ("boolean", ["true", "false"], "native"),
    ("date", ["infinity", "-infinity", "4713-01-01 BC", "0044-03-15 BC", "2000-02-29", "1970-01-01", "9999-12-31", "12345-06-07"], "epoch_days"),
    ("timestamp without time zone", ["infinity", "-infinity", "0044-03-15 12:00:00.123456 BC", "1970-01-01 00:00:00", "2024-02-29 23:59:59.999999", "12345-06-07 01:02:03.000004"], "epoch_us"),
    ("timestamp with time zone", ["infinity", "2024-02-29 23:59:59.999999+02", "0001-01-01 00:00:00+00", "0001-12-31 23:00:00-05 BC"], "epoch_us"),
    ("timestamp(3) with time zone", ["2024-01-01 10:00:00.123+00"], "epoch_us"),
    ("time without time zone", ["24:00:00", "13:14:15.000001"], "pg_text"),
    ("time with time zone", ["12:00:00+05:30", "00:00:00-12"], "pg_text"),
    ("interval", ["1 year 2 mons -3 days 04:05:06.7", "-00:00:00.000001"], "pg_text"),
    ("uuid", ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"], "native"),
    ("json", ['{"b":1,"a":2,"a":3}', "  [1, 2]  ", "null"], "pg_text"),
    ("jsonb", ['{"b":1,"a":[1,2]}', '"s"'], "pg_text"),
    ("integer[]", ["{1,NULL,3}", "{}"], "pg_text"),
    ("text[]", ['{{a,NULL},{"c d","e,f"}}'], "pg_text"),
    ("inet", ["192.168.0.1/24", "::1", "10.1.2.3"], "pg_text"),
    ("inet[]", ["{10.1.2.3,NULL,::1}"], "pg_text"),
    ("name", ["pg_class", ""], "native"),
    ('"char"', ["a", ""], "pg_text"),
    ("xml", ["<a b='1'>x &amp; y</a>"], "pg_text"),
    ("cidr", ["10.0.0.0/8"], "pg_text"),
    ("macaddr", ["08:00:2b:01:02:03"], "pg_text"),
    ("int4range", ["[1,10)", "empty"], "pg_text"),
    ("tstzrange", ["[2024-01-01,infinity)"], "pg_text"),
]


def _table(pg_type: str) -> Table:
    column = Column(name="v", pg_type=pg_type, base_type=pg_type, type_kind="b", is_array=pg_type.endswith("]"), not_null=False)
    return Table(schema="public", name="t", columns=(column,))


@pytest.fixture(scope="module")
def conn():
    with scratch_database("ssb_test_types") as url, psycopg.connect(url, autocommit=True) as connection:
        pgtypes.apply_session_settings(connection)
        yield connection


@pytest.mark.parametrize("pg_type,values,encoding", CASES, ids=[c[0] for c in CASES])
def test_round_trip_is_exact(conn, pg_type, values, encoding):
    _assert_round_trip(conn, _table(pg_type), values, encoding)


# Types that need to exist first: (setup, column type, its base type, values, encoding).
DEFINED = [
    ("CREATE DOMAIN positive AS integer CHECK (VALUE > 0)", "positive", "integer", ["1", "2147483647"], "native"),
    ("CREATE DOMAIN short_text AS character varying(8)", "short_text", "character varying(8)", ["", "a\tb"], "native"),
    ("CREATE DOMAIN stamp AS timestamp with time zone", "stamp", "timestamp with time zone", ["infinity", "2024-01-01 00:00:00+00"], "epoch_us"),
    ("CREATE DOMAIN tag AS uuid", "tag", "uuid", ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"], "native"),
    ("CREATE EXTENSION IF NOT EXISTS citext", "citext", "citext", ["MiXeD Case", ""], "native"),
    ("CREATE TYPE mood AS ENUM ('sad', 'ok')", "mood", "mood", ["ok", "sad"], "pg_text"),
]


@pytest.mark.parametrize("setup,pg_type,base_type,values,encoding", DEFINED, ids=[c[1] for c in DEFINED])
def test_round_trip_of_domains_extensions_and_enums(conn, setup, pg_type, base_type, values, encoding):
    conn.execute(setup)
    column = Column(name="v", pg_type=pg_type, base_type=base_type, type_kind="b", is_array=False, not_null=False)
    _assert_round_trip(conn, Table(schema="public", name="t", columns=(column,)), values, encoding)


def _assert_round_trip(conn, table: Table, values: list[str], encoding: str) -> None:
    pg_type = table.columns[0].pg_type
    assert pgtypes.encoding_for(table.columns[0]) == encoding
    conn.execute(f"DROP TABLE IF EXISTS t, back; CREATE TABLE t (v {pg_type}); CREATE TABLE back (v {pg_type})")
    with conn.cursor().copy("COPY t (v) FROM STDIN") as copy:
        for value in [*values, None]:
            copy.write_row([value])
    expected = [r[0] for r in conn.execute("SELECT t::text FROM t ORDER BY 1").fetchall()]

    buffer = io.BytesIO()
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    snapshot_id = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
    reader = SnapshotReader(conn.info.dsn, snapshot_id)
    try:
        stored = list(reader.batches(table))
    finally:
        reader.close()
        conn.execute("COMMIT")
    assert stored[0].schema == pgtypes.arrow_schema(table)
    pq.write_table(pa.Table.from_batches(stored), buffer)
    reread = pq.read_table(io.BytesIO(buffer.getvalue())).to_batches()[0]
    assert reread.schema.field("v").metadata[b"pg_type"].decode() == pg_type

    with conn.cursor().copy(pgtypes.copy_in_sql(Table(schema="public", name="back", columns=table.columns))) as copy:
        copy.write(pgtypes.batch_to_copy_csv(reread, table))
    restored = [r[0] for r in conn.execute("SELECT back::text FROM back ORDER BY 1").fetchall()]
    assert restored == expected


def test_native_columns_are_typed_in_parquet():
    assert pgtypes.arrow_type(_table("bigint").columns[0]) == pa.int64()
    assert pgtypes.arrow_type(_table("timestamp with time zone").columns[0]) == pa.timestamp("us", tz="UTC")
    assert pgtypes.arrow_type(_table("date").columns[0]) == pa.date32()
    assert pgtypes.arrow_type(_table("numeric").columns[0]) == pa.string()


def test_a_table_without_columns_keeps_its_rows_in_parquet_and_a_real_column_is_never_taken_for_the_placeholder():
    empty = Table(schema="public", name="marker", columns=())
    schema = pgtypes.arrow_schema(empty)
    stored = pgtypes.to_stored_batch(pa.RecordBatch.from_pydict({"x": [1, 2, 3]}).select([]), empty, schema)
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_batches([stored]), sink)
    reread = pq.read_table(io.BytesIO(sink.getvalue()))
    assert reread.num_rows == 3
    shown = pgtypes.table_columns(reread.to_batches()[0])
    assert (shown.num_rows, shown.num_columns) == (3, 0)
    # A table whose one column happens to bear the placeholder's name keeps that column.
    lookalike = Table(schema="public", name="t", columns=(Column(pgtypes.ROWS_PLACEHOLDER, "text", "text", "b", False, False),))
    batch = pa.RecordBatch.from_arrays([pa.array(["kept"])], schema=pgtypes.arrow_schema(lookalike))
    assert pgtypes.table_columns(batch).to_pylist() == [{pgtypes.ROWS_PLACEHOLDER: "kept"}]


def test_bytea_text_is_what_postgresql_prints_for_long_values_many_values_and_slices(conn):
    # Longer than one encoding chunk, a run of small values encoded together, NULLs, and slices.
    values = [b"", None, bytes(range(256)), b"\x5c" * (pgtypes._HEX_CHUNK + 3), *(bytes([i % 256]) * i for i in range(1, 300)), None]
    expected = [
        row[0] for row in conn.execute("SELECT v::text FROM unnest(%s::bytea[]) WITH ORDINALITY u(v, n) ORDER BY n", (values,))
    ]
    array = pa.array(values, pa.binary())
    assert pgtypes.bytea_text(array).to_pylist() == expected
    assert pgtypes.bytea_text(array.slice(2, 6)).to_pylist() == expected[2:8]
    assert pgtypes.bytea_text(pa.array(values, pa.large_binary())).to_pylist() == expected
