"""Re-running a failed partition: a real non-superuser backup role loses SELECT on one table, the
partition fails naming that table (at once, no retries), the GRANT comes back, and
`skillswap-backup backup --partition KEY` completes the snapshot with a fresh manifest."""

from __future__ import annotations

import json
import secrets
import subprocess
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import dagster as dg
import psycopg
from psycopg import sql

from skillswap_backup.lib import checksum, verify
from skillswap_backup.lib.catalog import Catalog
from skillswap_backup.lib.manifest import list_snapshots, read_manifest
from skillswap_backup.lib.storage import SnapshotStore
from skillswap_backup_tests.lifecycle_support import (
    CLI, backup_partition, cli_env, cli_instance, demo_source, environment, step_failures,
)
from skillswap_backup_tests.pgtools import admin_url

KEY = "2026-04-05"
REVOKED = "swap_ratings"


@contextmanager
def backup_role(database_url: str) -> Iterator[tuple[str, str]]:
    """A LOGIN role (unique name: roles are cluster-wide) with read access to every table; yields
    (its URL, its password) and drops it afterwards, whatever happened."""
    name = f"ssb_test_backup_{uuid.uuid4().hex[:8]}"
    password = f"pw-{secrets.token_hex(8)}"
    role = sql.Identifier(name)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(role, sql.Literal(password)))
        for schema in ("public", "drizzle"):
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), role))
            conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(sql.Identifier(schema), role))
            conn.execute(sql.SQL("GRANT SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(sql.Identifier(schema), role))
    parts = urlsplit(database_url)
    url = parts._replace(netloc=f"{name}:{password}@{parts.hostname}:{parts.port or 5432}").geturl()
    try:
        yield url, password
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,))
            conn.execute(sql.SQL("DROP OWNED BY {}").format(role))
        with psycopg.connect(admin_url(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))
            assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is None


def _grant(database_url: str, role_url: str, grant: bool) -> None:
    role = sql.Identifier(urlsplit(role_url).username)
    statement = "GRANT SELECT ON {} TO {}" if grant else "REVOKE SELECT ON {} FROM {}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL(statement).format(sql.Identifier("public", REVOKED), role))


def _source_checksums(database_url: str, body: dict) -> dict[str, tuple[int, str]]:
    catalog = Catalog.from_dict(body["catalog"])
    with psycopg.connect(database_url) as conn:
        return {
            t.qualified: tuple(conn.execute(checksum.checksum_sql(t, body["tables"][t.qualified]["checksum_method"])).fetchone())
            for t in catalog.tables
        }


def test_failed_partition_reruns_to_a_complete_consistent_snapshot(tmp_path: Path):
    with demo_source("ssb_test_lc_rerun", tmp_path) as owner_url, backup_role(owner_url) as (role_url, password):
        root = tmp_path / "backups"
        _grant(owner_url, role_url, grant=False)

        with environment(DATABASE_URL=role_url), dg.instance_for_test() as instance:
            failed = backup_partition(KEY, instance, expect_success=False)
            assert not failed.success
            failures = step_failures(failed)
            table_failures = [f for f in failures if f.startswith("skillswap__") and "dump" not in f and "schema" not in f]
            assert table_failures == [f"skillswap__{REVOKED}: table public.{REVOKED}: permission denied for table {REVOKED}"]
            # Permanent: no retry was attempted, and the password never appears.
            retried = {e.step_key for e in failed.all_events if e.event_type_value in ("STEP_UP_FOR_RETRY", "STEP_RESTARTED")}
            assert f"skillswap__{REVOKED}" not in retried
            assert password not in json.dumps([str(e) for e in failed.all_events])
            # The failure did not abort the run's snapshot transaction for the tables read after it.
            assert not [f for f in failures if "transaction is aborted" in f]
            materialized = {e.asset_key.path[-1] for e in failed.get_asset_materialization_events()}
            assert {"users", "skills", "swap_requests"} <= materialized
            assert REVOKED not in materialized
        assert KEY not in list_snapshots(str(root))

        _grant(owner_url, role_url, grant=True)
        with cli_instance(tmp_path) as instance_env:
            env = cli_env(DATABASE_URL=role_url, BACKUP_ROOT=str(root), BACKUP_CATALOG=str(tmp_path / "catalog.json"), **instance_env)
            rerun = subprocess.run([CLI, "backup", "--partition", KEY], env=env, capture_output=True, text=True, timeout=300)
            assert rerun.returncode == 0, rerun.stderr[-3000:]
            assert password not in rerun.stdout + rerun.stderr
            first_rerun = read_manifest(SnapshotStore(str(root), KEY))
            # Dagster's own CLI re-runs it too, with the command the README gives.
            dagster_cli = [str(Path(CLI).parent / "dagster"), "asset", "materialize", "-m", "skillswap_backup.definitions",
                           "--select", "not key:skillswap/lifecycle/snapshots", "--partition", KEY]
            again = subprocess.run(dagster_cli, env=env, capture_output=True, text=True, timeout=300)
            assert again.returncode == 0, again.stderr[-3000:]
            assert password not in again.stdout + again.stderr

        store = SnapshotStore(str(root), KEY)
        assert list_snapshots(str(root)) == [KEY]
        body = read_manifest(store)
        assert verify.verify_snapshot(store).ok
        # Fresh and consistent: every table re-read by the re-run, in one snapshot.
        metas = [json.loads((root / KEY / entry["path"]).read_text()) for entry in body["files"] if entry["path"].startswith("meta/")]
        assert len({m["run_id"] for m in metas}) == 1 and len({m["snapshot_id"] for m in metas}) == 1
        assert metas[0]["run_id"] != failed.run_id
        assert metas[0]["snapshot_id"] != first_rerun["snapshot_id"]  # the Dagster CLI's run read it afresh
        assert body["quality"]["status"] == "passed"
        assert body["tables"][f"public.{REVOKED}"]["rows"] == 8
        source = _source_checksums(owner_url, body)
        assert {name: (t["rows"], t["checksum"]) for name, t in body["tables"].items()} == source


def test_one_failing_table_leaves_the_snapshot_usable_for_the_next(tmp_path: Path):
    """The savepoint around each table: after `permission denied`, the same snapshot reads on."""
    import pytest

    from skillswap_backup.defs import retries
    from skillswap_backup.defs.resources import SourceDatabase
    from skillswap_backup.lib import backup, sanitize
    from skillswap_backup.lib.catalog import load_catalog
    from skillswap_backup.lib.table_reader import TableReadError

    with demo_source("ssb_test_lc_savepoint", tmp_path) as owner_url, backup_role(owner_url) as (role_url, _):
        _grant(owner_url, role_url, grant=False)
        catalog = load_catalog(tmp_path / "catalog.json")
        store = SnapshotStore(str(tmp_path / "backups"), KEY)
        source = SourceDatabase(url=role_url)
        snapshot = source.snapshot()
        try:
            def read(name: str):
                table = catalog.table(name)
                plan = sanitize.plan_table(table, sanitize.load_policy(), anonymize=False)
                with retries.savepoint(snapshot.conn, snapshot.reader, snapshot.side_conn):
                    return backup.backup_table(snapshot.conn, snapshot.reader, table, store, snapshot_id=snapshot.snapshot_id,
                                               json_plan=plan, checksum_conn=snapshot.side_conn)

            with pytest.raises(TableReadError) as refused:
                read(REVOKED)
            assert refused.value.sqlstate == "42501" and str(refused.value) == f"permission denied for table {REVOKED}"
            after = read("swap_requests")
            assert after.rows == 10 and after.snapshot_id == snapshot.snapshot_id
        finally:
            snapshot.conn.close()
            snapshot.reader.close()
            snapshot.side_conn.close()
