"""The restore's pure parts: pg_dump version checks, TOC parsing and selection, COPY text rendering
(checked by PostgreSQL itself reading it back), and table selection."""

from __future__ import annotations

import pyarrow as pa
import psycopg
import pytest

from skillswap_backup.lib import copy_text, pgdump, restore
from skillswap_backup.lib.catalog import Catalog, Column, ForeignKey, Table
from skillswap_backup.lib.schema_objects import ObjectEntry, select_entries
from skillswap_backup_tests.pgtools import scratch_database


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)", (15, 20)),
        ("pg_dump (PostgreSQL) 17.2", (17, 2)),
        ("pg_restore (PostgreSQL) 16beta1", (16, 0)),
        ("pg_dump (PostgreSQL) 9.6.24", (9, 6)),
    ],
)
def test_tool_versions_are_read(text, expected):
    assert pgdump.parse_version(text) == expected


def test_a_pg_dump_older_than_the_server_is_one_line_naming_both_and_the_fix():
    with pytest.raises(pgdump.DumpError) as raised:
        pgdump.check_dump_version((15, 20), 170002)
    message = str(raised.value)
    assert "pg_dump 15.20" in message and "PostgreSQL 17.2" in message
    assert "postgresql-client-17" in message and pgdump.PG_BINDIR_VAR in message and "\n" not in message
    pgdump.check_dump_version((17, 0), 170002)  # same major: fine
    pgdump.check_dump_version((17, 2), 150020)  # newer tool: fine


def test_the_installed_pg_dump_reads_its_own_version():
    major, _ = pgdump.tool_version("pg_dump")
    assert major >= 10


def test_toc_lines_keep_names_with_spaces():
    listing = ";\n; Archive created at …\n;\n216; 1259 21849 TABLE Other Schema Mixed Case postgres\n3440; 0 0 COMMENT public TABLE parent postgres\n"
    entries = pgdump.parse_toc(listing)
    assert [(e.dump_id, e.tableoid, e.oid) for e in entries] == [(216, 1259, 21849), (3440, 0, 0)]
    assert entries[0].text == "TABLE Other Schema Mixed Case postgres"
    assert entries[0].line == "216; 1259 21849 TABLE Other Schema Mixed Case postgres"


def _entry(dump_id, kind="object", tables=(), used_by=(), schema="public", extension=None):
    return ObjectEntry(dump_id, f"{dump_id}; 1 1 X", tuple(tables), kind, ("x", [], []), "x", extension, schema, tuple(used_by))


def test_entry_selection_for_full_and_partial_restores():
    entries = [
        _entry(1, "schema", schema="app"),
        _entry(2, "schema", schema="audit"),
        _entry(3, "extension", extension={"name": "citext", "schema": "public"}),
        _entry(4, "extension_comment"),
        _entry(5, used_by=["public.users", "public.tickets"]),  # a type both tables use
        _entry(6, used_by=["public.tickets"]),                  # a sequence only tickets uses
        _entry(7),                                               # a function no table uses
        _entry(10, "table", tables=["public.users"]),
        _entry(11, "table", tables=["public.tickets"]),
        _entry(12, tables=["public.tickets", "public.users"]),  # tickets -> users foreign key
        _entry(13, "acl"),
        _entry(14, "table", tables=["app.notes"], schema="app"),
    ]
    full = {e.dump_id for e in select_entries(entries, {"public.users", "public.tickets", "app.notes"})}
    assert full == {1, 2, 5, 6, 7, 10, 11, 12, 14}  # extensions are made by the restore; ACLs never
    partial = {e.dump_id for e in select_entries(entries, {"public.users"}, partial=True)}
    assert partial == {5, 7, 10}


def _table() -> Table:
    def col(name, pg_type, **kw):
        return Column(name=name, pg_type=pg_type, base_type=pg_type, type_kind="b", is_array=pg_type.endswith("[]"), not_null=False, **kw)

    return Table(
        schema="public", name="Odd Table",
        columns=(
            col("id", "integer"), col("t", "text"), col("b", "boolean"), col("d", "double precision"),
            col("bin", "bytea"), col("ts", "timestamp with time zone"), col("arr", "text[]"), col("j", "json"),
            col("twice", "integer", generated=True),
        ),
    )


NASTY = ["tab\there", "line\nbreak", "cr\r\nlf", "back\\slash", "\\N", "", None, "\\.", 'quote " and \' ', "ünïcödé ☃"]


def test_copy_text_is_read_back_by_postgresql_exactly(tmp_path):
    table = _table()
    n = len(NASTY)
    batch = pa.RecordBatch.from_arrays(
        [
            pa.array(range(n), pa.int32()),
            pa.array(NASTY, pa.string()),
            pa.array([True, False, None] * 3 + [True]),
            pa.array([float("nan"), float("inf"), float("-inf"), -0.0, 1.5e-300, None, 0.1, 2.0, 3.25, 1e300]),
            pa.array([b"\x00\x01\\", b"", None] + [b"x"] * (n - 3), pa.binary()),
            pa.array([0, None, 86_400_000_000 * 365] + [1] * (n - 3), pa.timestamp("us", tz="UTC")),
            pa.array(['{"a\tb","c\\\\d",NULL}', "{}", None] + ["{x}"] * (n - 3)),  # as PostgreSQL prints arrays
            pa.array(['{"k": "v\\\\n"}', "[1,\n2]", None] + ["1"] * (n - 3)),
            pa.array([0] * n, pa.int32()),
        ],
        names=[c.name for c in table.columns],
    )
    text = bytes(copy_text.batch_to_copy_text(batch, table))
    assert text.count(b"\n") == n  # one line per row: newlines inside values are escaped
    with scratch_database("ssb_test_copytext") as url, psycopg.connect(url) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute(
            'CREATE TABLE "Odd Table" (id int, t text, b boolean, d double precision, bin bytea, ts timestamptz, '
            "arr text[], j json, twice int GENERATED ALWAYS AS (id * 2) STORED)"
        )
        with conn.cursor().copy(copy_text.copy_in_sql(table)) as copy:
            copy.write(text)
        rows = conn.execute('SELECT t, b, d::text, bin, ts::text, arr, j::text, twice FROM "Odd Table" ORDER BY id').fetchall()
    assert [r[0] for r in rows] == NASTY
    assert [r[1] for r in rows] == [True, False, None] * 3 + [True]
    assert [r[2] for r in rows][:6] == ["NaN", "Infinity", "-Infinity", "-0", "1.5e-300", None]
    assert rows[0][3] == b"\x00\x01\\" and rows[1][3] == b"" and rows[2][3] is None
    assert [r[4] for r in rows][:3] == ["1970-01-01 00:00:00+00", None, "1971-01-01 00:00:00+00"]
    assert rows[0][5] == ["a\tb", "c\\d", None] and rows[0][6] == '{"k": "v\\\\n"}' and rows[1][6] == "[1,\n2]"
    assert [r[7] for r in rows] == [i * 2 for i in range(n)]  # generated: recomputed, not loaded


def test_table_selection_closes_over_foreign_keys_and_rejects_bad_requests():
    def table(name, tier, *parents):
        fks = tuple(ForeignKey(f"{name}_{p}_fk", ("x",), "public", p, ("id",)) for p in parents)
        return Table("public", name, (Column("id", "integer", "integer", "b", False, True),), ("id",), (), fks, (), tier)

    catalog = Catalog("db", "15", "now", (
        table("users", "critical"), table("skills", "critical"), table("swaps", "important", "users", "skills"),
        table("ratings", "important", "swaps", "users"), table("notes", "optional", "users"),
    ))
    ordered, requested, added = restore.select_tables(catalog, restore.RestoreOptions(tables=("ratings",)), "k")
    assert requested == ["public.ratings"] and added == ["public.skills", "public.swaps", "public.users"]
    names = [t.name for t in ordered]
    assert names.index("users") < names.index("swaps") < names.index("ratings") and "notes" not in names
    ordered, _, added = restore.select_tables(catalog, restore.RestoreOptions(tier="optional"), "k")
    assert [t.name for t in ordered] == ["users", "notes"] and added == ["public.users"]
    for options, needle in [
        (restore.RestoreOptions(tables=("nope",)), "table 'nope' is not in snapshot k"),
        (restore.RestoreOptions(tier="gold"), "unknown tier 'gold'"),
        (restore.RestoreOptions(tables=("users",), tier="critical"), "either --tables or --tier"),
    ]:
        with pytest.raises(restore.RestoreError, match=needle):
            restore.select_tables(catalog, options, "k")


@pytest.mark.parametrize("url,local", [
    ("postgresql://postgres@127.0.0.1:5432/db", True),
    ("postgresql://u:p@localhost/db", True),
    ("postgresql:///db", True),  # the default socket
    ("postgresql://u@%2Fvar%2Frun%2Fpostgresql/db", True),
    ("postgresql://u:secret@ep-cool-1.eu-central-1.aws.neon.tech/db?sslmode=require", False),
])
def test_parallel_index_builds_are_left_to_remote_servers_only(url, local):
    assert restore._on_this_machine(url) is local
