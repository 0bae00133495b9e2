"""The CLI end to end: a backup through the project's Dagster instance, and bad input
answered with one clear line, a non-zero exit, and never a password."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from skillswap_backup_tests.lifecycle_support import demo_source, environment
from skillswap_backup_tests.pgtools import scratch_database

REPO = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "skillswap-backup")
SECRET = "pw-Never-Print-Me-7731"


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "BACKUP_", "DAGSTER_"))}
    return subprocess.run([CLI, *args], env={**full_env, **env}, capture_output=True, text=True, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert SECRET not in result.stdout + result.stderr
    return lines[0]


@pytest.fixture
def demo(tmp_path):
    with demo_source("ssb_test_cli", tmp_path) as url:
        yield url, {
            "DATABASE_URL": url,
            "BACKUP_ROOT": str(tmp_path / "backups"),
            "BACKUP_CATALOG": str(tmp_path / "catalog.json"),
            "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        }


def test_backup_through_the_instance_then_list(demo, tmp_path):
    url, env = demo
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    with scratch_database("ssb_test_dagster") as instance_url:
        env = {**env, "DAGSTER_PG_URL": instance_url.replace("postgresql://", "postgresql+psycopg2://")}
        result = run_cli("backup", "--partition", "2026-11-22", env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "public.skills" in result.stdout and "127" in result.stdout
        assert "total: 10 tables" in result.stdout and " 277 " in result.stdout  # 274 + 3 journal rows
        listed = run_cli("list", "--tables", env=env)
        assert listed.returncode == 0
        assert "2026-11-22" in listed.stdout and "public.users" in listed.stdout
        # The run is in the instance the UI reads (Dagster's storage in PostgreSQL).
        with environment(DAGSTER_PG_URL=env["DAGSTER_PG_URL"], DAGSTER_HOME=str(home)):
            with dg.DagsterInstance.get() as instance:
                runs = instance.get_runs()
                assert [r.tags.get("dagster/partition") for r in runs] == ["2026-11-22"]
                assert runs[0].is_success


def test_unreachable_database(tmp_path):
    env = {"DATABASE_URL": f"postgresql://app:{SECRET}@127.0.0.1:1/app", "BACKUP_ROOT": str(tmp_path / "b"),
           "BACKUP_CATALOG": str(tmp_path / "c.json"), "DAGSTER_HOME": str(tmp_path)}
    line = assert_one_line_error(run_cli("backup", env=env), "cannot connect", "app@127.0.0.1:1/app")
    assert "running and reachable" in line


def test_unknown_user_and_password_never_shown(tmp_path):
    env = {"DATABASE_URL": f"postgresql://no_such_role_ssb:{SECRET}@127.0.0.1:5432/postgres",
           "BACKUP_ROOT": str(tmp_path / "b"), "BACKUP_CATALOG": str(tmp_path / "c.json"), "DAGSTER_HOME": str(tmp_path)}
    assert_one_line_error(run_cli("discover", env=env), "cannot connect", "no_such_role_ssb")


def test_table_dropped_since_discovery(demo):
    url, env = demo
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE notifications")
    assert_one_line_error(run_cli("backup", env=env), "public.notifications", "skillswap-backup discover")


def test_column_added_since_discovery(demo):
    url, env = demo
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE users ADD COLUMN nickname text")
    assert_one_line_error(run_cli("backup", env=env), "schema drift in public.users", "added: nickname")


def test_unwritable_backup_root(demo, tmp_path):
    _, env = demo
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    line = assert_one_line_error(run_cli("backup", env={**env, "BACKUP_ROOT": str(blocker / "backups")}), "BACKUP_ROOT")
    assert "writable" in line


def test_missing_database_url(tmp_path):
    assert_one_line_error(run_cli("backup", env={"DAGSTER_HOME": str(tmp_path)}), "DATABASE_URL is not set")


def test_a_second_run_of_the_same_partition_is_refused_while_one_is_in_progress(demo, tmp_path):
    url, env = demo
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")  # its queue limits one run per partition
    with scratch_database("ssb_test_dagster") as instance_url:
        env = {**env, "DAGSTER_PG_URL": instance_url.replace("postgresql://", "postgresql+psycopg2://")}
        with environment(DAGSTER_PG_URL=env["DAGSTER_PG_URL"], DAGSTER_HOME=str(home)), dg.DagsterInstance.get() as instance:
            limits = instance.run_coordinator.get_run_queue_config().tag_concurrency_limits
            assert {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
            # A run of that week launched elsewhere (the schedule, the UI) and still running.
            busy = instance.add_run(dg.DagsterRun(job_name="backup", status=dg.DagsterRunStatus.STARTED, tags={"dagster/partition": "2026-11-22"}))
            line = assert_one_line_error(run_cli("backup", "--partition", "2026-11-22", env=env), busy.run_id, "still started")
            assert "wait for it to end" in line
            assert not (tmp_path / "backups" / "2026-11-22" / "tables").exists()  # nothing was read or written
            # Another week is not held back, and once the run has ended the week can be backed up.
            assert run_cli("backup", "--partition", "2026-11-15", env=env).returncode == 0
            instance.report_run_failed(busy)
            again = run_cli("backup", "--partition", "2026-11-22", env=env)
            assert again.returncode == 0, again.stderr[-3000:]
            assert (tmp_path / "backups" / "2026-11-22" / "manifest.json").is_file()
