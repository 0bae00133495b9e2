"""The demo database backed up, then restored with `skillswap-backup restore` through a
PostgreSQL-backed Dagster instance: the app works afterwards (same rows, a working login, keys
in place), partial restores keep their foreign keys, and bad requests get one line."""

from __future__ import annotations

import shutil

import bcrypt
import dagster as dg
import psycopg
import pytest

from skillswap_backup.lib.demo_db import DEMO_COUNTS, DEMO_USER_EMAIL, DEMO_USER_PASSWORD
from skillswap_backup.lib.encryption import write_identity_file
from skillswap_backup_tests.lifecycle_support import demo_source, environment
from skillswap_backup_tests.pgtools import scratch_database
from skillswap_backup.cli.main import main
from skillswap_backup_tests.restore_support import (
    REPO,
    SECRET,
    backup_snapshot,
    failure_messages,
    one_line,
    report_of,
    restore_run,
    rows_as_text,
    run_cli,
    tables_in,
)

KEY = "2026-11-22"
ALL_TABLES = [f"public.{t}" for t in DEMO_COUNTS] + ["drizzle.__drizzle_migrations"]
CRITICAL = {"public.skills", "public.users", "public.user_skills_offered", "public.user_skills_wanted"}

ORPHANS_SQL = """
SELECT c.conname, (SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated)
FROM pg_constraint c WHERE c.contype = 'f' ORDER BY 1
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo backed up once; yields (source url, CLI environment) with a PostgreSQL Dagster instance."""
    tmp = tmp_path_factory.mktemp("restore_demo")
    home = tmp / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    with demo_source("ssb_test_rd_src", tmp) as url, dg.instance_for_test() as instance, \
            scratch_database("ssb_test_rd_dagster") as instance_url:
        backup_snapshot(KEY, instance)
        yield url, {
            "BACKUP_ROOT": str(tmp / "backups"),
            "BACKUP_CATALOG": str(tmp / "catalog.json"),
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_URL": instance_url.replace("postgresql://", "postgresql+psycopg2://"),
        }


def _login_hash(url: str) -> str:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT password FROM users WHERE email = %s", (DEMO_USER_EMAIL,)).fetchone()[0]


def test_cli_restores_the_demo_verified_and_the_demo_user_can_log_in(demo):
    source, env = demo
    with scratch_database("ssb_test_rd_full") as target:
        result = run_cli("restore", "--target-url", target, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        out = result.stdout
        assert f"restore of snapshot {KEY}" in out and "verified: every table matches the snapshot" in out
        for table, count in DEMO_COUNTS.items():
            assert any(line.startswith(f"public.{table} ") and f" {count} " in line for line in out.splitlines()), table
        assert any(line.startswith("total: 10 tables") and line.split()[-1] == "277" for line in out.splitlines())
        for qualified in ALL_TABLES:
            assert rows_as_text(target, qualified) == rows_as_text(source, qualified), qualified
        assert bcrypt.checkpw(DEMO_USER_PASSWORD.encode(), _login_hash(target).encode())
        with psycopg.connect(target) as conn:
            keys = conn.execute(ORPHANS_SQL).fetchall()
            assert len(keys) == 17 and keys[0][1] == 0
            # The app can sign up a new user: the id continues after the restored ones.
            new_id = conn.execute(
                "INSERT INTO users (email, password, first_name, last_name) VALUES ('new@x.example', 'x', 'N', 'U') RETURNING id"
            ).fetchone()[0]
            assert new_id == DEMO_COUNTS["users"] + 1
        # The run is in the instance the UI reads, tagged with the target (never its password).
        with environment(DAGSTER_PG_URL=env["DAGSTER_PG_URL"], DAGSTER_HOME=env["DAGSTER_HOME"]):
            with dg.DagsterInstance.get() as instance:
                runs = [r for r in instance.get_runs() if r.job_name == "restore"]
                assert runs[0].is_success and runs[0].tags["skillswap/snapshot"] == KEY


def test_cli_restores_on_a_machine_that_has_only_the_backups(demo, tmp_path):
    """The new server after the old provider expired: no catalog, no source database to discover."""
    source, env = demo
    bare = {**env, "BACKUP_CATALOG": str(tmp_path / "no-catalog-here.json")}
    with scratch_database("ssb_test_rd_bare") as target:
        result = run_cli("restore", "--validate-target", "--target-url", target, env=bare)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "verified: every table matches the snapshot" in result.stdout
        # --validate-target: the suites ran on the restored database itself.
        assert "data quality of the restored database: 39/39 checks passed on 10 tables" in result.stdout
        assert not (tmp_path / "no-catalog-here.json").exists()
        for qualified in ALL_TABLES:
            assert rows_as_text(target, qualified) == rows_as_text(source, qualified), qualified


def test_cli_critical_tier_gives_a_database_whose_foreign_keys_hold(demo):
    source, env = demo
    with scratch_database("ssb_test_rd_tier") as target:
        result = run_cli("restore", "--tier", "critical", "--target-url", target, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "foreign-key parents added" not in result.stdout  # the tier is closed over its keys
        assert tables_in(target, ["public", "drizzle"]) == CRITICAL
        for qualified in CRITICAL:
            assert rows_as_text(target, qualified) == rows_as_text(source, qualified)
        with psycopg.connect(target) as conn:
            keys = conn.execute(ORPHANS_SQL).fetchall()
            assert [k[0] for k in keys] == [
                "user_skills_offered_skill_id_skills_id_fk", "user_skills_offered_user_id_users_id_fk",
                "user_skills_wanted_skill_id_skills_id_fk", "user_skills_wanted_user_id_users_id_fk",
            ]
            assert keys[0][1] == 0
        assert bcrypt.checkpw(DEMO_USER_PASSWORD.encode(), _login_hash(target).encode())


def test_cli_named_tables_bring_their_parents_and_say_so(demo):
    _, env = demo
    with scratch_database("ssb_test_rd_tables") as target:
        result = run_cli("restore", "--tables", "swap_ratings", "--target-url", target, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "foreign-key parents added: public.skills, public.swap_requests, public.users" in result.stdout
        assert tables_in(target, ["public"]) == {"public.swap_ratings", "public.swap_requests", "public.users", "public.skills"}


def test_cli_refuses_a_target_with_data_then_clean_replaces_it(demo):
    source, env = demo
    with scratch_database("ssb_test_rd_clean") as target, dg.instance_for_test() as instance, \
            environment(BACKUP_ROOT=env["BACKUP_ROOT"], BACKUP_CATALOG=env["BACKUP_CATALOG"]):
        assert restore_run(instance, target).success
        with psycopg.connect(target) as conn:
            conn.execute("UPDATE users SET first_name = 'Changed'")
        refused = run_cli("restore", "--target-url", target, env=env)
        assert refused.returncode == 1
        line = one_line(refused.stderr, "already holds data in", "public.users", "public.skills", "--clean")
        assert line.startswith("skillswap-backup restore: ")
        cleaned = run_cli("restore", "--clean", "--target-url", target, env=env)
        assert cleaned.returncode == 0, cleaned.stderr[-3000:]
        assert "--clean dropped 10 existing tables" in cleaned.stdout
        assert rows_as_text(target, "public.users") == rows_as_text(source, "public.users")


def _fails(capsys, *args: str) -> str:
    assert main(["restore", *args]) == 1
    return one_line(capsys.readouterr().err)


def test_cli_bad_requests_are_one_line(demo, capsys):
    _, env = demo
    with scratch_database("ssb_test_rd_bad") as target, environment(NEW_DATABASE_URL=None, **env):
        assert "NEW_DATABASE_URL is not set" in _fails(capsys)
        line = _fails(capsys, "--snapshot", "2020-01-05", "--target-url", target)
        assert "2020-01-05" in line and "not a complete snapshot" in line and KEY in line
        assert "table 'nope' is not in snapshot" in _fails(capsys, "--tables", "nope", "--target-url", target)
        assert "--from dump restores the whole database" in _fails(capsys, "--from", "dump", "--tier", "critical", "--target-url", target)
        line = _fails(capsys, "--target-url", f"postgresql://postgres:{SECRET}@127.0.0.1:1/nowhere")
        assert "cannot connect" in line and "127.0.0.1:1/nowhere" in line
        with psycopg.connect(target) as conn:
            conn.execute("CREATE TABLE users (id int)")
        line = _fails(capsys, "--data-only", "--tables", "users", "--target-url", target)
        assert "public.users lacks columns email, password" in line and "migrations" in line
        assert "lacks public.skills" in _fails(capsys, "--data-only", "--tables", "skills", "--target-url", target)
        assert "tables already exist in the target" in _fails(capsys, "--tables", "users", "--target-url", target)


def test_encrypted_snapshot_restores_with_the_identity(demo, tmp_path):
    source, _ = demo
    key_file = tmp_path / "age.key"
    recipient = write_identity_file(key_file)
    root = tmp_path / "encrypted"
    with environment(BACKUP_ROOT=str(root), BACKUP_AGE_RECIPIENTS=recipient, BACKUP_AGE_IDENTITY=str(key_file)), \
            dg.instance_for_test() as instance:
        backup_snapshot(KEY, instance)
        stored = {p.relative_to(root / KEY).as_posix() for p in (root / KEY).rglob("*") if p.is_file()}
        assert {"schema/schema.dump.age", "dump/full.dump.age", "tables/users/part-00000.parquet.age"} <= stored
        with scratch_database("ssb_test_rd_age") as target:
            result = restore_run(instance, target)
            assert result.success, failure_messages(result)
            assert report_of(result)["ok"]
            assert bcrypt.checkpw(DEMO_USER_PASSWORD.encode(), _login_hash(target).encode())
        with scratch_database("ssb_test_rd_age_dump") as target:
            result = restore_run(instance, target, source="dump")
            assert result.success, failure_messages(result)
            assert rows_as_text(target, "public.users") == rows_as_text(source, "public.users")
