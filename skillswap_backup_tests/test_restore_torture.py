"""Backup -> restore -> compare on a type-torture schema, through the real Dagster jobs.

Every row of every table must come back identical as PostgreSQL prints it (`row::text`), with
the schema's constraints, indexes, triggers, comments, views and sequences in place.
"""

from __future__ import annotations

import subprocess
import uuid

import dagster as dg
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from skillswap_backup.lib import dumps
from skillswap_backup.lib.catalog import load_catalog
from skillswap_backup.lib.manifest import read_manifest
from skillswap_backup.lib.storage import SnapshotStore
from skillswap_backup_tests.pgtools import admin_url, database_name, scratch_database
from skillswap_backup_tests.restore_support import (
    backup_snapshot,
    create_schema_as_the_app_would,
    failure_messages,
    report_of,
    restore_run,
    rows_as_text,
    schema_objects,
    sequence_states,
    tables_in,
    torture_source,
)

KEY = "2026-11-22"
SCHEMAS = ["public", "Other Schema", "drizzle"]


@pytest.fixture(scope="module")
def torture(tmp_path_factory):
    """The torture schema backed up once by the real backup job; yields (source url, tmp, catalog, instance)."""
    tmp = tmp_path_factory.mktemp("torture")
    with torture_source("ssb_test_rt_src", tmp) as url, dg.instance_for_test() as instance:
        backup_snapshot(KEY, instance)
        yield url, tmp, load_catalog(tmp / "catalog.json"), instance


def _assert_identical(source: str, target: str, tables) -> None:
    for qualified in tables:
        assert rows_as_text(target, qualified) == rows_as_text(source, qualified), qualified


def test_snapshot_has_the_schema_and_full_dump_files(torture):
    _, tmp, _, _ = torture
    body = read_manifest(SnapshotStore(str(tmp / "backups"), KEY))
    paths = {f["path"] for f in body["files"]}
    assert {dumps.SCHEMA_DUMP, dumps.SCHEMA_SQL, dumps.SCHEMA_OBJECTS, dumps.FULL_DUMP} <= paths
    schema_sql = (tmp / "backups" / KEY / dumps.SCHEMA_SQL).read_text()
    assert "CREATE TABLE public.torture" in schema_sql and "CREATE TYPE public.mood AS ENUM" in schema_sql
    # The full dump is a plain custom-format archive: pg_restore alone can list it.
    listing = subprocess.run(["pg_restore", "--list", str(tmp / "backups" / KEY / dumps.FULL_DUMP)],
                             capture_output=True, text=True, check=True).stdout
    assert "TABLE DATA public torture" in listing and "TABLE DATA Other Schema Mixed Case" in listing


def test_full_restore_gives_back_every_row_and_object(torture):
    source, _, catalog, instance = torture
    with scratch_database("ssb_test_rt_full") as target:
        result = restore_run(instance, target)
        assert result.success, failure_messages(result)
        report = report_of(result)
        assert report["ok"] and report["partition_key"] == KEY
        assert {t["table"] for t in report["tables"]} == {t.qualified for t in catalog.tables}
        assert all(t["ok"] and t["rows"] == t["expected_rows"] for t in report["tables"])
        assert next(t for t in report["tables"] if t["table"] == "public.many")["rows"] == 70000
        assert report["foreign_keys"] == 6
        _assert_identical(source, target, [t.qualified for t in catalog.tables] + ["public.people_with_boss"])
        assert schema_objects(target, SCHEMAS) == schema_objects(source, SCHEMAS)
        # Generated columns were recomputed by the target, and stay generated.
        with psycopg.connect(target) as conn:
            assert conn.execute("SELECT attgenerated FROM pg_attribute WHERE attrelid = 'torture'::regclass AND attname = 'gen'").fetchone()[0] == "s"
            assert conn.execute("SELECT count(*) FROM torture WHERE gen IS DISTINCT FROM i4::bigint * 2").fetchone()[0] == 0
            # No owner or grant came along: everything belongs to the restoring role.
            owners = conn.execute("SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = 'public'::regnamespace").fetchall()
            assert owners == [(conn.info.user,)]


def test_sequences_and_identities_continue_after_the_restore(torture):
    source, _, _, instance = torture
    with scratch_database("ssb_test_rt_seq") as target:
        assert restore_run(instance, target).success
        # Each sequence is where the source's was: the next insert gets the id the source would give.
        assert sequence_states(target) == sequence_states(source)
        with psycopg.connect(target) as conn:
            assert conn.execute("INSERT INTO people (name) VALUES ('new') RETURNING id").fetchone()[0] == 5
            assert conn.execute("INSERT INTO torture (i4) VALUES (21) RETURNING id, gen").fetchone() == (6, 42)
            assert conn.execute("INSERT INTO ticket DEFAULT VALUES RETURNING no, note").fetchone() == (1003, "stamped")
            assert conn.execute('INSERT INTO "Other Schema".audit (what) VALUES (%s) RETURNING id', ("x",)).fetchone()[0] == 3
            assert conn.execute("INSERT INTO nothing (x) VALUES (1) RETURNING id").fetchone()[0] == 1
            assert conn.execute("INSERT INTO drizzle.__drizzle_migrations (hash) VALUES ('z') RETURNING id").fetchone()[0] == 3


def test_restore_from_the_full_dump(torture):
    source, _, catalog, instance = torture
    with scratch_database("ssb_test_rt_dump") as target:
        result = restore_run(instance, target, source="dump")
        assert result.success, failure_messages(result)
        report = report_of(result)
        assert report["source"] == "dump" and report["ok"]
        _assert_identical(source, target, [t.qualified for t in catalog.tables])
        assert schema_objects(target, SCHEMAS) == schema_objects(source, SCHEMAS)
        assert sequence_states(target) == sequence_states(source)
        # Again over the restored database: refused, then replaced with pg_restore --clean.
        assert "already holds data" in failure_messages(restore_run(instance, target, source="dump"))[0]
        again = restore_run(instance, target, source="dump", clean=True)
        assert again.success, failure_messages(again)
        _assert_identical(source, target, [t.qualified for t in catalog.tables])


def test_chosen_tables_bring_their_foreign_key_parents(torture):
    source, _, _, instance = torture
    with scratch_database("ssb_test_rt_part") as target:
        result = restore_run(instance, target, tables=["person_order"])
        assert result.success, failure_messages(result)
        report = report_of(result)
        assert report["added_parents"] == ["public.line", "public.order", "public.people"]
        expected = {"public.person_order", "public.people", "public.order", "public.line"}
        assert tables_in(target, SCHEMAS) == expected
        _assert_identical(source, target, expected)
        with psycopg.connect(target) as conn:
            keys = conn.execute("SELECT conname, convalidated FROM pg_constraint WHERE contype = 'f' ORDER BY 1").fetchall()
            assert keys == [("line_order_id_fkey", True), ("order_primary_line", True), ("people_boss_id_fkey", True),
                            ("person_order_order_id_fkey", True), ("person_order_person_id_fkey", True)]
            # Objects of tables left out stay out (ticket's sequence, the drizzle schema); the view
            # over people comes along with it.
            assert conn.execute("SELECT to_regclass('ticket_seq'), to_regnamespace('drizzle')").fetchone() == (None, None)
            assert conn.execute("SELECT to_regclass('people_with_boss')").fetchone()[0] is not None


def test_refuses_a_target_with_data_and_clean_replaces_only_what_it_restores(torture):
    source, _, catalog, instance = torture
    with scratch_database("ssb_test_rt_clean") as target:
        assert restore_run(instance, target).success
        with psycopg.connect(target) as conn:
            conn.execute("DELETE FROM many WHERE id > 100")
            conn.execute("CREATE TABLE public.keep_me (id int PRIMARY KEY, v text)")
            conn.execute("INSERT INTO keep_me VALUES (1, 'mine')")
        refused = restore_run(instance, target)
        assert not refused.success
        message = failure_messages(refused)[0]
        assert "already holds data in" in message and "public.many" in message and "public.torture" in message
        assert "--clean" in message and "postgres" not in message.split("holds")[1]
        cleaned = restore_run(instance, target, clean=True)
        assert cleaned.success, failure_messages(cleaned)
        assert report_of(cleaned)["ok"]
        _assert_identical(source, target, [t.qualified for t in catalog.tables])
        assert rows_as_text(target, "public.keep_me") == ["(1,mine)"]


def _auth_objects(url: str) -> list[str]:
    return [o for o in schema_objects(url, ["auth"]) if not o.startswith("extension ")]


def test_an_unrelated_schema_in_the_target_is_left_untouched(torture):
    source, _, catalog, instance = torture
    with scratch_database("ssb_test_rt_extra") as target:
        with psycopg.connect(target) as conn:
            # A provider's own schema (as Supabase's auth): same table and type names as ours.
            conn.execute("CREATE SCHEMA auth")
            conn.execute("CREATE TYPE auth.mood AS ENUM ('meh')")
            conn.execute("CREATE TABLE auth.people (id serial PRIMARY KEY, name text, m auth.mood)")
            conn.execute("INSERT INTO auth.people (name, m) VALUES ('provider', 'meh')")
            conn.execute("CREATE FUNCTION auth.uid() RETURNS int LANGUAGE sql AS 'SELECT 1'")
        before = (_auth_objects(target), rows_as_text(target, "auth.people"), sequence_states(target))
        assert restore_run(instance, target).success
        assert restore_run(instance, target, clean=True).success
        after = (_auth_objects(target), rows_as_text(target, "auth.people"), sequence_states(target))
        assert after[0] == before[0] and after[1] == before[1]
        assert after[2]["auth.people_id_seq"] == before[2]["auth.people_id_seq"]
        with psycopg.connect(target) as conn:
            assert conn.execute("SELECT count(*) FROM pg_proc WHERE pronamespace = 'auth'::regnamespace").fetchone()[0] == 1
        _assert_identical(source, target, [t.qualified for t in catalog.tables])


def test_data_only_loads_into_tables_the_app_created(torture):
    source, tmp, catalog, instance = torture
    with scratch_database("ssb_test_rt_data") as target:
        create_schema_as_the_app_would(target, tmp / "backups" / KEY)
        result = restore_run(instance, target, mode="data-only")
        assert result.success, failure_messages(result)
        report = report_of(result)
        assert report["mode"] == "data-only" and report["ok"] and report["foreign_keys"] == 6
        assert any("foreign keys were dropped for the load and added back" in n for n in report["notes"])
        _assert_identical(source, target, [t.qualified for t in catalog.tables])
        assert schema_objects(target, SCHEMAS) == schema_objects(source, SCHEMAS)
        with psycopg.connect(target) as conn:
            assert conn.execute("INSERT INTO people (name) VALUES ('new') RETURNING id").fetchone()[0] == 5
        # A second data-only restore is refused (the tables hold data); with --clean it empties and reloads them.
        assert "already holds data" in failure_messages(restore_run(instance, target, mode="data-only"))[0]
        again = restore_run(instance, target, mode="data-only", clean=True)
        assert again.success, failure_messages(again)
        _assert_identical(source, target, [t.qualified for t in catalog.tables])


def test_data_only_names_the_tables_missing_in_the_target(torture):
    _, _, _, instance = torture
    with scratch_database("ssb_test_rt_missing") as target:
        with psycopg.connect(target) as conn:
            conn.execute("CREATE TABLE people (id serial PRIMARY KEY, name text UNIQUE NOT NULL, boss_id int REFERENCES people (id))")
        result = restore_run(instance, target, mode="data-only", tables=["people"])
        assert result.success, failure_messages(result)
        refused = restore_run(instance, target, mode="data-only", tables=["ticket"])
        message = failure_messages(refused)[0]
        assert "lacks public.ticket" in message and "migrations" in message


def test_a_role_without_superuser_restores_everything_once_the_provider_enabled_the_extension(torture):
    """As on Neon, Supabase or Railway: the restoring role owns the database and nothing more."""
    source, _, catalog, instance = torture
    role = f"ssb_test_role_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url(), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        with scratch_database("ssb_test_rt_role") as target:
            with psycopg.connect(admin_url(), autocommit=True) as admin:
                admin.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                    sql.Identifier(database_name(target)), sql.Identifier(role)))
            as_role = make_conninfo(target, user=role)
            refused = restore_run(instance, as_role)
            assert not refused.success
            message = failure_messages(refused)[0]
            assert "does not allow CREATE EXTENSION pg_buffercache" in message and "permission denied" in message
            assert "Database > Extensions" in message and tables_in(target, SCHEMAS) == set()
            with psycopg.connect(target, autocommit=True) as conn:  # what the provider's dashboard does
                conn.execute("CREATE EXTENSION pg_buffercache")
            result = restore_run(instance, as_role)
            assert result.success, failure_messages(result)
            assert report_of(result)["ok"]
            _assert_identical(source, target, [t.qualified for t in catalog.tables])
            with psycopg.connect(target) as conn:
                owners = {r[0] for r in conn.execute(
                    "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class c WHERE relnamespace::regnamespace::text = ANY(%s)"
                    " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')",
                    (SCHEMAS,)).fetchall()}
                assert owners == {role}
    finally:
        with psycopg.connect(admin_url(), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
