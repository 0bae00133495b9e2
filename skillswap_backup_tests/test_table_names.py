"""Table names PostgreSQL allows and file paths do not: dots, slashes, "..", "%".

A public table "x.y" and table y of schema x must be two tables everywhere (files, checks,
restore), and no name may write outside its own place in the snapshot folder.
"""

from __future__ import annotations

import pytest

from skillswap_backup.lib.catalog import load_catalog
from skillswap_backup.lib.quality.publish import load_results
from skillswap_backup.lib.storage import SnapshotStore
from skillswap_backup_tests.pgtools import scratch_database
from skillswap_backup_tests.restore_support import backed_up_source, failure_messages, report_of, restore_run, rows_as_text

KEY = "2026-11-22"

SOURCE_SQL = """
CREATE SCHEMA x;
CREATE TABLE public."x.y" (id int PRIMARY KEY, v text);
INSERT INTO public."x.y" VALUES (1, 'public table named x.y');
CREATE TABLE x.y (id int PRIMARY KEY, v text);
INSERT INTO x.y VALUES (2, 'table y of schema x'), (3, 'table y of schema x');
CREATE TABLE "a/b" (id int);
INSERT INTO "a/b" VALUES (4);
CREATE TABLE "../escape" (id int);
INSERT INTO "../escape" VALUES (5), (6), (7);
CREATE TABLE "100%" (id int);
INSERT INTO "100%" VALUES (8);
"""
TABLES = ["public.x.y", "x.y", "public.a/b", "public.../escape", "public.100%"]  # schema, then the table's name


def rows(url: str) -> dict[str, list[str]]:
    return {qualified: rows_as_text(url, qualified) for qualified in TABLES}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("names")
    with backed_up_source("ssb_test_names_src", tmp, SOURCE_SQL, KEY) as (url, instance):
        yield url, tmp, instance


def test_every_table_has_files_of_its_own_inside_the_snapshot(source):
    _, tmp, _ = source
    folder = tmp / "backups" / KEY
    store = SnapshotStore(str(tmp / "backups"), KEY)
    catalog = load_catalog(tmp / "catalog.json")
    assert sorted(t.file_stem for t in catalog.tables) == ["%2E%2E%2Fescape", "100%25", "a%2Fb", "x%2Ey", "x.y"]
    # Nothing was written next to the snapshot's own folders (a "../" name stays a file name).
    assert sorted(p.name for p in folder.iterdir()) == ["dump", "extras", "json", "manifest.json", "meta", "reports", "schema", "tables"]
    assert sorted(p.name for p in (folder / "tables").iterdir()) == sorted(t.file_stem for t in catalog.tables)
    counts = {t.qualified: store.read_json(f"meta/{t.file_stem}.json")["rows"] for t in catalog.tables}
    assert counts == {"public.x.y": 1, "x.y": 2, "public.a/b": 1, "public.../escape": 3, "public.100%": 1}
    results = {r.table: (r.rows, r.failed_families(), r.error) for r in load_results(store)}
    assert results == {name: (n, [], "") for name, n in counts.items()}
    # The Data Docs have a page for every table, the slash kept inside one page name.
    pages = sorted(p.name for p in (folder / "reports" / "validations").rglob("*.html"))
    assert pages == ["public%2E%2E.%2Fescape.html", "public.100%25.html", "public.a%2Fb.html", "public.x.y.html", "x.y.html"]


def test_restore_gives_each_table_its_own_rows(source):
    url, _, instance = source
    with scratch_database("ssb_test_names_dst") as target:
        result = restore_run(instance, target)
        assert result.success, failure_messages(result)
        assert report_of(result)["ok"]
        restored = rows(target)
        assert restored == rows(url)
        assert restored["x.y"] == ["(2,\"table y of schema x\")", "(3,\"table y of schema x\")"]
        assert restored["public.x.y"] == ["(1,\"public table named x.y\")"]
