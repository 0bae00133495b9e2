"""Content checksums (lib/checksum.py) on the real server: what they must tell apart, and the
legacy method that snapshots made before `checksum_method` existed still verify with."""

from __future__ import annotations

import psycopg
import pytest

from skillswap_backup.lib import checksum, pgtypes
from skillswap_backup.lib.catalog import Column, Table

from .pgtools import scratch_database

# Values equal under their type's equality (and its hash function) that PostgreSQL prints
# differently: a restore that turned one into the other must not pass verification.
EQUAL_BUT_PRINTED_DIFFERENTLY = [
    ("numeric", "1.0", "1.00"),
    ("double precision", "0", "-0"),
    ("real", "0", "-0"),
    ("interval", "1 day", "24 hours"),
    ("jsonb", '{"a": 1.0}', '{"a": 1.00}'),
    ("numeric[]", "{1.0,NULL}", "{1.00,NULL}"),
    ("citext", "abc", "ABC"),
    ("text COLLATE case_insensitive", "abc", "ABC"),
    ("character varying(10) COLLATE case_insensitive", "abc", "ABC"),
]


def _table(name: str, columns: list[tuple[str, str]]) -> Table:
    return Table(
        schema="public",
        name=name,
        columns=tuple(
            Column(name=c, pg_type=t, base_type=t.split(" COLLATE")[0], type_kind="b", is_array=t.endswith("[]"), not_null=False)
            for c, t in columns
        ),
    )


@pytest.fixture(scope="module")
def conn():
    with scratch_database("ssb_test_checksum") as url, psycopg.connect(url, autocommit=True) as connection:
        pgtypes.apply_session_settings(connection)
        connection.execute("CREATE EXTENSION citext")
        connection.execute("CREATE COLLATION case_insensitive (provider = icu, locale = 'und-u-ks-level2', deterministic = false)")
        yield connection


def _sum(conn, table: Table, method: str) -> tuple[int, str]:
    return conn.execute(checksum.checksum_sql(table, method)).fetchone()


@pytest.mark.parametrize("pg_type,value,other", EQUAL_BUT_PRINTED_DIFFERENTLY, ids=[c[0] for c in EQUAL_BUT_PRINTED_DIFFERENTLY])
@pytest.mark.parametrize("method", [checksum.CURRENT_METHOD, checksum.LEGACY_METHOD])
def test_values_printed_differently_have_different_checksums(conn, method, pg_type, value, other):
    conn.execute(f"DROP TABLE IF EXISTS t; CREATE TABLE t (id integer, v {pg_type})")
    table = _table("t", [("id", "integer"), ("v", pg_type)])
    conn.execute("INSERT INTO t VALUES (1, %s)", (value,))
    before, printed = _sum(conn, table, method), conn.execute("SELECT v::text FROM t").fetchone()[0]
    conn.execute("UPDATE t SET v = %s", (other,))
    # PostgreSQL itself holds the two values equal; only their text forms differ.
    assert conn.execute("SELECT v = %s FROM t", (value,)).fetchone()[0] is True
    assert conn.execute("SELECT v::text FROM t").fetchone()[0] != printed
    after = _sum(conn, table, method)
    assert after != before
    assert after[0] == before[0] == 1


def test_typed_checksum_is_order_independent_and_sees_every_column(conn):
    conn.execute(
        "DROP TABLE IF EXISTS t; CREATE TABLE t (id bigint, name text, born date, seen timestamptz, tag uuid, raw bytea, ok boolean, score numeric)"
    )
    table = _table("t", [("id", "bigint"), ("name", "text"), ("born", "date"), ("seen", "timestamp with time zone"),
                         ("tag", "uuid"), ("raw", "bytea"), ("ok", "boolean"), ("score", "numeric")])
    rows = [
        (1, "ana", "2001-02-03", "2024-01-01 10:00:00+00", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", b"\x00\x01", True, "1.5"),
        (2, None, None, None, None, None, None, None),
        (3, "", "infinity", "-infinity", "00000000-0000-0000-0000-000000000000", b"", False, "NaN"),
    ]
    conn.execute("TRUNCATE t")
    for row in rows:
        conn.execute("INSERT INTO t VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", row)
    forward = _sum(conn, table, checksum.CURRENT_METHOD)
    conn.execute("TRUNCATE t")
    for row in reversed(rows):
        conn.execute("INSERT INTO t VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", row)
    assert _sum(conn, table, checksum.CURRENT_METHOD) == forward
    assert forward[0] == 3
    for column, changed in [("id", "4"), ("name", "'Ana'"), ("born", "'2001-02-04'"), ("seen", "seen + interval '1 microsecond'"),
                            ("tag", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12'"), ("raw", "'\\x0002'"), ("ok", "NOT ok"), ("score", "score + 1")]:
        with conn.transaction(force_rollback=True):
            conn.execute(f"UPDATE t SET {column} = {changed} WHERE id = 1")
            assert _sum(conn, table, checksum.CURRENT_METHOD) != forward, column
    # A value moved to another column of the same type is another row.
    with conn.transaction(force_rollback=True):
        conn.execute("UPDATE t SET name = NULL WHERE id = 3")
        assert _sum(conn, table, checksum.CURRENT_METHOD) != forward


def test_legacy_method_gives_the_checksums_older_snapshots_recorded(conn):
    conn.execute("DROP TABLE IF EXISTS t; CREATE TABLE t (id integer, note text, at timestamptz, price numeric)")
    conn.execute("INSERT INTO t VALUES (1, 'a\tb', '2024-01-01 10:00:00+02', 1.50), (2, NULL, NULL, NULL)")
    table = _table("t", [("id", "integer"), ("note", "text"), ("at", "timestamp with time zone"), ("price", "numeric")])
    # The query every snapshot before the checksum_method field was verified with.
    recorded = conn.execute(
        "SELECT count(*), coalesce(sum(hashtextextended(ROW(id, note, at, price)::text, 0)::numeric), 0)::text FROM t"
    ).fetchone()
    assert checksum.method_of({"checksum": recorded[1]}) == checksum.LEGACY_METHOD
    assert _sum(conn, table, checksum.method_of({"checksum": recorded[1]})) == recorded
    assert checksum.method_of({"checksum_method": "typed"}) == checksum.CURRENT_METHOD
    with pytest.raises(ValueError, match="newer skillswap-backup"):
        checksum.checksum_sql(table, "sha3")
