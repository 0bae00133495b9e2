"""Least privilege, the PostgreSQL 14+ way: a role holding only CONNECT and `pg_read_all_data`
backs up every asset (tables, schema dump, full dump, manifest)."""

from __future__ import annotations

import json

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from skillswap_backup_tests.lifecycle_support import backup_partition, environment, step_failures
from skillswap_backup_tests.pgtools import database_name
from skillswap_backup_tests.restore_support import backup_snapshot
from skillswap_backup_tests.security_support import login_role, security_source, url_as

KEY = "2026-05-17"


def _grant_connect(conn: psycopg.Connection, url: str, role: str) -> sql.Identifier:
    """CONNECT on the source for `role` (the tests then grant pg_read_all_data, PostgreSQL 14+)."""
    if conn.info.server_version < 140000:
        pytest.skip("pg_read_all_data exists from PostgreSQL 14")
    ident = sql.Identifier(role)
    conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database_name(url)), ident))
    return ident


def test_a_pg_read_all_data_role_backs_up_every_asset(tmp_path):
    with login_role("readall") as (role, password), security_source("ssb_test_sec_readall", tmp_path) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            ident = _grant_connect(conn, url, role)
            readable = "SELECT has_table_privilege(%s, 'drizzle.__drizzle_migrations', 'SELECT')"
            assert conn.execute(readable, (role,)).fetchone()[0] is False  # nothing but CONNECT so far
            conn.execute(sql.SQL("GRANT pg_read_all_data TO {}").format(ident))
            assert conn.execute(readable, (role,)).fetchone()[0] is True
            assert conn.execute("SELECT has_table_privilege(%s, 'users', 'INSERT')", (role,)).fetchone()[0] is False
        with environment(DATABASE_URL=url_as(url, role, password)), dg.instance_for_test() as instance:
            result = backup_snapshot(KEY, instance)
            assert result.success
            text = "\n".join(str(e) for e in instance.all_logs(result.run_id))
        assert password not in text
        manifest = json.loads((tmp_path / "backups" / KEY / "manifest.json").read_text())
        assert {"schema/schema.dump", "dump/full.dump"} <= {f["path"] for f in manifest["files"]}
        assert manifest["tables"]["drizzle.__drizzle_migrations"]["rows"] == 3
        assert manifest["tables"]["public.session"]["rows"] == 3


def test_rows_hidden_by_row_level_security_fail_the_backup_instead_of_going_missing(tmp_path):
    """Supabase-style: RLS on a table, backed up by a pg_read_all_data role. Its policies would
    show that role no row at all; the backup must fail (as pg_dump does), never store 0 rows."""
    with login_role("rls") as (role, password), security_source("ssb_test_sec_rls", tmp_path) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("GRANT pg_read_all_data TO {}").format(_grant_connect(conn, url, role)))
            conn.execute("ALTER TABLE skills ENABLE ROW LEVEL SECURITY")
            conn.execute("CREATE POLICY skills_of_the_app ON skills USING (current_user = 'skillswap_app')")
        with environment(DATABASE_URL=url_as(url, role, password)), dg.instance_for_test() as instance:
            refused = backup_partition(KEY, instance, expect_success=False)
            assert not refused.success
            failures = [f for f in step_failures(refused) if f.startswith("skillswap__skills:")]
            assert failures == [
                'skillswap__skills: table public.skills: query would be affected by row-level security policy for table '
                '"skills"; back up as a role that bypasses row-level security (BYPASSRLS, a superuser, or the table\'s '
                "owner when the table does not FORCE ROW LEVEL SECURITY), as pg_dump needs too"
            ]
            assert not (tmp_path / "backups" / KEY / "manifest.json").exists()
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(sql.SQL("ALTER ROLE {} BYPASSRLS").format(sql.Identifier(role)))
            backup_partition(KEY, instance)
        manifest = json.loads((tmp_path / "backups" / KEY / "manifest.json").read_text())
        assert manifest["tables"]["public.skills"]["rows"] == 127
