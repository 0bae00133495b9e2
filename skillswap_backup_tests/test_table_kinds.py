"""What is not a plain table of columns: inheritance, partitions, tables without columns,
materialized views, large objects, foreign tables.

Each must come back from a backup and restore with exactly its own rows: an inheritance parent
without its children's rows (they are tables of their own), a partitioned table with its rows in
the same partitions, a table without columns (or with only a generated one) with its row count,
a materialized view populated as it was in the source, large objects with their contents, a
foreign table (whose rows live elsewhere and are not backed up, as with pg_dump) with its
definition and a view over it. Rows are compared as PostgreSQL prints them, with the table that
physically holds each row.
"""

from __future__ import annotations

import dataclasses
import json

import psycopg
import pytest
from psycopg import sql

from skillswap_backup.lib.catalog import load_catalog, save_catalog
from skillswap_backup.lib.quality.publish import load_results
from skillswap_backup.lib.storage import SnapshotStore
from skillswap_backup_tests.lifecycle_support import backup_partition, copy_snapshot, environment, step_failures
from skillswap_backup_tests.pgtools import scratch_database
from skillswap_backup_tests.restore_support import (
    backed_up_source,
    create_schema_as_the_app_would,
    failure_messages,
    report_of,
    restore_run,
)

KEY = "2026-11-22"

SOURCE_SQL = """
CREATE TABLE city (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE capital (state text NOT NULL) INHERITS (city);
INSERT INTO city VALUES (1, 'Lyon'), (2, 'Porto');
INSERT INTO capital VALUES (3, 'Paris', 'FR'), (4, 'Lisbon', 'PT');

CREATE TABLE reading (sensor int NOT NULL, at date NOT NULL, value numeric, PRIMARY KEY (sensor, at)) PARTITION BY RANGE (at);
CREATE TABLE reading_2025 PARTITION OF reading FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE reading_2026 PARTITION OF reading FOR VALUES FROM ('2026-01-01') TO ('2027-01-01') PARTITION BY LIST (sensor);
CREATE TABLE reading_2026_odd PARTITION OF reading_2026 FOR VALUES IN (1, 3);
CREATE TABLE reading_2026_rest PARTITION OF reading_2026 DEFAULT;
INSERT INTO reading VALUES (1, '2025-03-01', 1.5), (1, '2026-03-01', 2.25), (2, '2026-04-01', NULL), (3, '2026-05-01', -0.0);

CREATE TABLE marker ();
INSERT INTO marker DEFAULT VALUES; INSERT INTO marker DEFAULT VALUES; INSERT INTO marker DEFAULT VALUES;
CREATE TABLE emptied (a int, b text);
INSERT INTO emptied VALUES (1, 'x'), (2, 'y');
ALTER TABLE emptied DROP COLUMN a, DROP COLUMN b;
CREATE TABLE constant (seven int GENERATED ALWAYS AS (7) STORED);
INSERT INTO constant DEFAULT VALUES; INSERT INTO constant DEFAULT VALUES;

CREATE MATERIALIZED VIEW yearly AS SELECT extract(year FROM at)::int AS year, count(*) AS n FROM reading GROUP BY 1;
CREATE MATERIALIZED VIEW busiest AS SELECT year FROM yearly ORDER BY n DESC, year LIMIT 1;
CREATE MATERIALIZED VIEW city_names AS SELECT name FROM city WITH NO DATA;

CREATE TABLE attachment (id int PRIMARY KEY, content oid NOT NULL);
INSERT INTO attachment VALUES (1, lo_from_bytea(0, 'first file')), (2, lo_from_bytea(0, '\\x00ff00'::bytea));

CREATE EXTENSION postgres_fdw;
CREATE SERVER elsewhere FOREIGN DATA WRAPPER postgres_fdw OPTIONS (dbname 'ssb_test_kinds_nowhere');
CREATE FOREIGN TABLE remote_city (id int NOT NULL, name text) SERVER elsewhere OPTIONS (table_name 'city');
COMMENT ON FOREIGN TABLE remote_city IS 'rows live on another server';
CREATE VIEW every_city AS SELECT id, name FROM city UNION ALL SELECT id, name FROM remote_city;
"""

# Every table holding rows, partitions included, each row with the table it physically lives in.
PHYSICAL_TABLES = [
    "city", "capital", "reading_2025", "reading_2026_odd", "reading_2026_rest", "marker", "emptied", "constant", "attachment",
]
LARGE_OBJECTS = "SELECT a.id, lo_get(a.content) FROM attachment a ORDER BY 1"
FOREIGN_TABLE = """
SELECT c.relname, s.srvname, f.ftoptions, obj_description(c.oid, 'pg_class')
FROM pg_foreign_table f JOIN pg_class c ON c.oid = f.ftrelid JOIN pg_foreign_server s ON s.oid = f.ftserver
"""


def physical_rows(url: str) -> dict[str, list[str]]:
    with psycopg.connect(url) as conn:
        return {
            name: sorted(
                r[0] for r in conn.execute(sql.SQL("SELECT t::text FROM ONLY {} t").format(sql.Identifier(name))).fetchall()
            )
            for name in PHYSICAL_TABLES
        }


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kinds")
    with backed_up_source("ssb_test_kinds_src", tmp, SOURCE_SQL, KEY) as (url, instance):
        yield url, tmp, instance


def test_catalog_holds_the_partitioned_root_and_both_inheritance_tables(source):
    _, tmp, _ = source
    catalog = load_catalog(tmp / "catalog.json")
    assert {t.qualified: t.partitioned for t in catalog.tables} == {
        "public.attachment": False, "public.capital": False, "public.city": False, "public.constant": False,
        "public.emptied": False, "public.marker": False, "public.reading": True,
    }
    assert [c.name for c in catalog.table("marker").columns] == [] == [c.name for c in catalog.table("emptied").columns]


def test_snapshot_holds_each_tables_own_rows(source):
    _, tmp, _ = source
    store = SnapshotStore(str(tmp / "backups"), KEY)
    rows = {name: store.read_json(f"meta/{name}.json")["rows"] for name in ("city", "capital", "reading", "marker", "emptied", "constant")}
    # city's own two rows, not the capitals it inherits; every partition's rows under reading.
    assert rows == {"city": 2, "capital": 2, "reading": 4, "marker": 3, "emptied": 2, "constant": 2}
    # A row of a table without columns is an empty object in the readable export.
    assert json.loads((tmp / "backups" / KEY / "json" / "marker.json").read_text()) == [{}, {}, {}]
    assert json.loads((tmp / "backups" / KEY / "json" / "constant.json").read_text()) == [{"seven": 7}, {"seven": 7}]
    assert json.loads((tmp / "backups" / KEY / "json" / "city.json").read_text()) == [
        {"id": 1, "name": "Lyon"}, {"id": 2, "name": "Porto"},
    ]
    # The data-quality checks agree with the source's count(*) of each table's own rows.
    results = {r.table: r for r in load_results(store)}
    assert {name: r.failed_families() for name, r in results.items()} == {
        f"public.{n}": [] for n in ("attachment", "capital", "city", "constant", "emptied", "marker", "reading")
    }
    assert (results["public.city"].rows, results["public.marker"].rows) == (2, 3)


def test_restore_puts_every_row_back_into_the_table_that_held_it(source):
    url, _, instance = source
    with scratch_database("ssb_test_kinds_dst") as target:
        result = restore_run(instance, target)
        assert result.success, failure_messages(result)
        report = report_of(result)
        assert report["ok"]
        assert {t["table"]: t["rows"] for t in report["tables"]} == {
            "public.attachment": 2, "public.capital": 2, "public.city": 2, "public.constant": 2,
            "public.emptied": 2, "public.marker": 3, "public.reading": 4,
        }
        restored = physical_rows(target)
        assert restored == physical_rows(url)
        assert restored["city"] == ["(1,Lyon)", "(2,Porto)"]
        assert restored["reading_2026_odd"] == ["(1,2026-03-01,2.25)", "(3,2026-05-01,0.0)"]
        assert restored["marker"] == ["()", "()", "()"]
        # Materialized views are filled as in the source (one over another, in order); WITH NO DATA stays empty.
        with psycopg.connect(target) as conn:
            assert conn.execute("SELECT year, n FROM yearly ORDER BY 1").fetchall() == [(2025, 1), (2026, 3)]
            assert conn.execute("SELECT year FROM busiest").fetchall() == [(2026,)]
            populated = conn.execute("SELECT relname, relispopulated FROM pg_class WHERE relkind = 'm' ORDER BY 1").fetchall()
            assert populated == [("busiest", True), ("city_names", False), ("yearly", True)]
            # Large objects came back from the full dump, under the oids the rows point at.
            assert conn.execute(LARGE_OBJECTS).fetchall() == [(1, b"first file"), (2, b"\x00\xff\x00")]
            # The foreign table is recreated as it was defined (no rows of it were read), with the view over it.
            assert conn.execute(FOREIGN_TABLE).fetchall() == [
                ("remote_city", "elsewhere", ["table_name=city"], "rows live on another server"),
            ]
            assert "remote_city" in conn.execute("SELECT pg_get_viewdef('every_city'::regclass)").fetchone()[0]
        with psycopg.connect(url) as conn:
            assert conn.execute(LARGE_OBJECTS).fetchall() == [(1, b"first file"), (2, b"\x00\xff\x00")]


def test_data_only_restore_into_tables_the_app_created(source):
    url, tmp, instance = source
    with scratch_database("ssb_test_kinds_data") as target:
        create_schema_as_the_app_would(target, tmp / "backups" / KEY)
        result = restore_run(instance, target, mode="data-only")
        assert result.success, failure_messages(result)
        assert report_of(result)["ok"]
        assert physical_rows(target) == physical_rows(url)
        with psycopg.connect(target) as conn:
            assert conn.execute("SELECT year, n FROM yearly ORDER BY 1").fetchall() == [(2025, 1), (2026, 3)]
            assert conn.execute(LARGE_OBJECTS).fetchall() == [(1, b"first file"), (2, b"\x00\xff\x00")]
        # Again: refused (the tables hold data, the large objects exist) until --clean, which empties
        # every table (ONLY its own rows), replaces the large objects, and doubles nothing.
        refused = restore_run(instance, target, mode="data-only")
        assert not refused.success and "already holds data" in failure_messages(refused)[0]
        again = restore_run(instance, target, mode="data-only", clean=True)
        assert again.success, failure_messages(again)
        assert physical_rows(target) == physical_rows(url)
        # Tables emptied by hand but the large objects still there: refused by oid, not duplicated.
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute("TRUNCATE city, capital, reading, marker, emptied, constant, attachment")
        lingering = restore_run(instance, target, mode="data-only")
        assert not lingering.success
        assert "already has large objects with the snapshot's oids" in failure_messages(lingering)[0]
        assert "--clean" in failure_messages(lingering)[0]


def test_backup_refuses_a_catalog_that_does_not_know_a_table_is_partitioned(source, tmp_path):
    _, tmp, instance = source
    catalog = load_catalog(tmp / "catalog.json")
    stale = dataclasses.replace(catalog, tables=tuple(dataclasses.replace(t, partitioned=False) for t in catalog.tables))
    save_catalog(stale, tmp_path / "catalog.json")
    with environment(BACKUP_CATALOG=str(tmp_path / "catalog.json"), BACKUP_ROOT=str(tmp_path / "backups")):
        result = backup_partition(KEY, instance, expect_success=False)
    assert not result.success
    assert any(
        "table public.reading is now partitioned" in message and "run `skillswap-backup discover`" in message
        for message in step_failures(result)
    ), step_failures(result)


def test_results_of_tables_left_out_of_the_catalog_leave_the_report(source, tmp_path):
    _, tmp, instance = source
    catalog = load_catalog(tmp / "catalog.json")
    fewer = dataclasses.replace(catalog, tables=tuple(t for t in catalog.tables if t.name != "marker"))
    save_catalog(fewer, tmp_path / "catalog.json")
    copy_snapshot(tmp / "backups", KEY, tmp_path / "backups")
    store = SnapshotStore(str(tmp_path / "backups"), KEY)
    assert "public.marker" in [r.table for r in load_results(store)]
    with environment(BACKUP_CATALOG=str(tmp_path / "catalog.json"), BACKUP_ROOT=str(tmp_path / "backups")):
        backup_partition(KEY, instance)  # the same snapshot folder, re-run with one table fewer
    tables = [r.table for r in load_results(store)]
    # Its files go too; every other table keeps its own.
    folder = tmp_path / "backups" / KEY
    assert sorted(p.name for p in (folder / "tables").iterdir()) == sorted(t.file_stem for t in fewer.tables)
    assert sorted(p.name for p in (folder / "meta").iterdir()) == sorted(f"{t.file_stem}.json" for t in fewer.tables)
    assert not (folder / "json" / "marker.json").exists() and (folder / "json" / "constant.json").is_file()
    assert sorted(tables) == ["public.attachment", "public.capital", "public.city", "public.constant", "public.emptied", "public.reading"]
