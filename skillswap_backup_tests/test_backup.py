"""The backup pipeline on real PostgreSQL: catalog, asset graph, Parquet fidelity, JSON
sanitizing, snapshot layout and one consistent snapshot under a concurrent writer."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from skillswap_backup.lib import pgtypes
from skillswap_backup.lib.catalog import load_catalog
from skillswap_backup.lib.storage import SnapshotStore
from skillswap_backup_tests.lifecycle_support import backup_partition, demo_source, environment

KEY = "2026-11-22"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A demo source backed up once into partition KEY; yields (url, tmp folder, catalog)."""
    tmp = tmp_path_factory.mktemp("backup")
    with demo_source("ssb_test_backup", tmp) as url, dg.instance_for_test() as instance:
        result = backup_partition(KEY, instance)
        assert result.success
        yield url, tmp, load_catalog(tmp / "catalog.json"), instance


def test_catalog_reflects_every_schema_with_keys_and_tiers(demo):
    _, _, catalog, _ = demo
    names = {t.qualified for t in catalog.tables}
    assert "drizzle.__drizzle_migrations" in names and "public.users" in names and len(names) == 10
    tiers = {t.name: t.tier for t in catalog.tables}
    assert tiers["users"] == tiers["skills"] == tiers["user_skills_offered"] == "critical"
    assert tiers["swap_ratings"] == "important" and tiers["messages"] == "optional"
    assert tiers["__drizzle_migrations"] == "important"  # unknown tables default to important
    users = catalog.table("users")
    assert users.primary_key == ("id",)
    assert ("email",) in users.unique_keys
    types = {c.name: c.pg_type for c in users.columns}
    assert types["availability"] == "jsonb" and types["rating"].startswith("numeric")
    ratings = catalog.table("swap_ratings")
    assert {fk.ref_table for fk in ratings.foreign_keys} == {"swap_requests", "users"}
    assert any("rating" in check.definition for check in ratings.checks)


def test_asset_deps_follow_foreign_keys(demo):
    from skillswap_backup.definitions import build_definitions

    graph = build_definitions().resolve_asset_graph()
    deps = {key.path[-1]: {p.path[-1] for p in graph.get(key).parent_keys} for key in graph.get_all_asset_keys()}
    assert deps["skills"] == set() and deps["users"] == set()
    assert deps["user_skills_offered"] == {"users", "skills"}
    assert deps["swap_requests"] == {"users", "skills"}
    assert deps["swap_ratings"] == {"swap_requests", "users"}
    assert deps["messages"] == {"conversations", "users"}
    groups = {key.path[-1]: graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups["users"] == "critical" and groups["swap_ratings"] == "important" and groups["messages"] == "optional"
    assert dg.AssetKey(["skillswap", "drizzle", "__drizzle_migrations"]) in graph.get_all_asset_keys()


def _rows_as_text(conn: psycopg.Connection, schema: str, table: str) -> list[str]:
    query = sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(schema, table))
    return sorted(r[0] for r in conn.execute(query).fetchall())


def test_every_parquet_value_equals_the_source(demo):
    url, tmp, catalog, _ = demo
    store = SnapshotStore(str(tmp / "backups"), KEY)
    with psycopg.connect(url) as conn:
        for name, value in pgtypes.SESSION_SETTINGS.items():
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))
        for table in catalog.tables:
            # Load the Parquet back through PostgreSQL's own parser into a copy of the table.
            conn.execute(sql.SQL("CREATE TEMP TABLE parquet_copy (LIKE {} INCLUDING GENERATED)").format(
                sql.Identifier(table.schema, table.name)))
            copy_sql = pgtypes.copy_in_sql(dataclasses.replace(table, schema="pg_temp", name="parquet_copy"))
            with conn.cursor().copy(copy_sql) as copy:
                for batch in store.iter_batches(table):
                    copy.write(pgtypes.batch_to_copy_csv(batch, table))
            source = _rows_as_text(conn, table.schema, table.name)
            assert _rows_as_text(conn, "pg_temp", "parquet_copy") == source, table.qualified
            assert store.parquet_rows(table) == len(source)
            conn.execute("DROP TABLE pg_temp.parquet_copy")
        assert len(_rows_as_text(conn, "public", "skills")) == 127


def test_json_is_readable_and_has_no_secrets(demo):
    _, tmp, _, _ = demo
    folder = tmp / "backups" / KEY / "json"
    users = json.loads((folder / "users.json").read_text())
    assert len(users) == 24
    assert "email" in users[0] and not any("password" in key for key in users[0])
    for path in folder.iterdir():
        text = path.read_text()
        json.loads(text)
        assert "$2b$" not in text and "$2a$" not in text, path.name


def test_snapshot_folder_layout(demo):
    _, tmp, catalog, _ = demo
    folder = tmp / "backups" / KEY
    for table in catalog.tables:
        assert (folder / "tables" / table.file_stem / "part-00000.parquet").is_file()
        assert (folder / "meta" / f"{table.file_stem}.json").is_file()
    assert (folder / "json" / "drizzle.__drizzle_migrations.json").is_file()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["partition_key"] == KEY
    assert manifest["tables"]["public.skills"]["rows"] == 127
    assert not [p for p in folder.rglob(".tmp-*")]


def test_rerunning_a_partition_replaces_its_files(demo):
    url, tmp, catalog, instance = demo
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO skills (name, category) VALUES ('Test skill ZZ9', 'Testing')")
    try:
        assert backup_partition(KEY, instance).success
        manifest = json.loads((tmp / "backups" / KEY / "manifest.json").read_text())
        assert manifest["tables"]["public.skills"]["rows"] == 128
        parts = list((tmp / "backups" / KEY / "tables" / "skills").iterdir())
        assert [p.name for p in parts] == ["part-00000.parquet"]
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DELETE FROM skills WHERE name = 'Test skill ZZ9'")


def test_one_snapshot_while_a_writer_inserts_linked_rows(tmp_path):
    """A writer commits (swap request, rating) pairs throughout the backup; no rating in the
    snapshot may point at a swap request missing from it."""
    with demo_source("ssb_test_consistent", tmp_path, scale=40) as url, dg.instance_for_test() as instance:
        stop = threading.Event()
        committed = []

        def writer():
            with psycopg.connect(url, autocommit=True) as conn:
                users = [r[0] for r in conn.execute("SELECT id FROM users ORDER BY id LIMIT 2")]
                skill = conn.execute("SELECT min(id) FROM skills").fetchone()[0]
                while not stop.is_set():
                    with conn.transaction():
                        request = conn.execute(
                            "INSERT INTO swap_requests (requester_id, recipient_id, offered_skill_id, wanted_skill_id, status)"
                            " VALUES (%s, %s, %s, %s, 'completed') RETURNING id",
                            (users[0], users[1], skill, skill),
                        ).fetchone()[0]
                        conn.execute(
                            "INSERT INTO swap_ratings (swap_request_id, rater_id, rated_user_id, rating) VALUES (%s, %s, %s, 5)",
                            (request, users[0], users[1]),
                        )
                    committed.append(request)
                    time.sleep(0.002)

        thread = threading.Thread(target=writer)
        thread.start()
        time.sleep(0.3)
        try:
            before = len(committed)
            result = backup_partition(KEY, instance)
            during = len(committed) - before
        finally:
            stop.set()
            thread.join()
        assert result.success
        assert during > 10, "the writer must have committed while the backup ran"
        catalog = load_catalog(tmp_path / "catalog.json")
        store = SnapshotStore(str(tmp_path / "backups"), KEY)
        requests = {v for b in store.iter_batches(catalog.table("swap_requests"), ["id"]) for v in b.column(0).to_pylist()}
        rated = {v for b in store.iter_batches(catalog.table("swap_ratings"), ["swap_request_id"]) for v in b.column(0).to_pylist()}
        assert rated - requests == set()
        assert any(r in requests for r in committed), "some of the writer's rows are in the snapshot"


def test_definitions_load_and_validate_while_the_source_is_down(demo, tmp_path):
    import subprocess
    import sys

    _, tmp, _, _ = demo
    down = "postgresql://postgres:secret-pw@127.0.0.1:1/nowhere"
    # A fresh DAGSTER_HOME: validation needs no instance database either.
    with environment(DATABASE_URL=down, BACKUP_CATALOG=str(tmp / "catalog.json"), DAGSTER_HOME=str(tmp_path)):
        from skillswap_backup.definitions import build_definitions

        assert len(build_definitions().resolve_asset_graph().get_all_asset_keys()) >= 11
        validate = subprocess.run(
            [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
            cwd=Path(__file__).resolve().parents[1],
            capture_output=True,
            text=True,
            timeout=240,
        )
    assert validate.returncode == 0, validate.stderr[-2000:]


NAMED_LIKE_OUR_ASSETS_SQL = """
CREATE TABLE manifest (id serial PRIMARY KEY, title text NOT NULL);
CREATE TABLE schema (id serial PRIMARY KEY, manifest_id integer REFERENCES manifest (id));
CREATE TABLE full_dump (id serial PRIMARY KEY, note text);
CREATE SCHEMA lifecycle;
CREATE TABLE lifecycle.snapshots (id serial PRIMARY KEY, taken date);
INSERT INTO manifest (title) VALUES ('a'), ('b');
INSERT INTO schema (manifest_id) VALUES (1), (2), (NULL);
INSERT INTO full_dump (note) VALUES ('x');
INSERT INTO lifecycle.snapshots (taken) VALUES ('2026-01-01');
"""


def test_tables_named_like_the_projects_own_assets_get_keys_of_their_own(tmp_path):
    from skillswap_backup_tests.lifecycle_support import discover
    from skillswap_backup_tests.pgtools import scratch_database

    with scratch_database("ssb_test_named") as url, dg.instance_for_test() as instance:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(NAMED_LIKE_OUR_ASSETS_SQL)
        discover(url, tmp_path / "catalog.json")
        settings = {"DATABASE_URL": url, "BACKUP_ROOT": str(tmp_path / "backups"), "BACKUP_CATALOG": str(tmp_path / "catalog.json")}
        with environment(**settings):
            result = backup_partition(KEY, instance)
    keys = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {
        "skillswap/tables/public/manifest", "skillswap/tables/public/schema", "skillswap/tables/public/full_dump",
        "skillswap/tables/lifecycle/snapshots", "skillswap/manifest", "skillswap/schema", "skillswap/full_dump",
    } <= keys
    body = json.loads((tmp_path / "backups" / KEY / "manifest.json").read_text())
    rows = {name: table["rows"] for name, table in body["tables"].items()}
    assert rows == {"public.manifest": 2, "public.schema": 3, "public.full_dump": 1, "lifecycle.snapshots": 1}
    assert body["quality"]["restorable"] is True
