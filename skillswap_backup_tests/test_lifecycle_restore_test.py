"""`verify --restore-test`: restore into a scratch database, validate against the manifest, drop it —
passing or failing, the scratch database never outlives the test."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from skillswap_backup.cli.main import main
from skillswap_backup.defs.lifecycle.jobs import verify_job, verify_run_config
from skillswap_backup.defs.resources import BackupStorage
from skillswap_backup.lib import restore_test, verify
from skillswap_backup.lib.storage import SnapshotStore
from skillswap_backup_tests.lifecycle_support import backup_partition, copy_snapshot, demo_source, environment
from skillswap_backup_tests.pgtools import admin_url

KEY = "2026-05-03"


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("restore_test")
    with demo_source("ssb_test_lc_rtest", tmp) as url, dg.instance_for_test() as instance:
        backup_partition(KEY, instance)
        yield tmp / "backups", url


@pytest.fixture
def copy(snapshot, tmp_path) -> Path:
    root, _ = snapshot
    copy_snapshot(root, KEY, tmp_path)
    return tmp_path


def _scratch_databases() -> set[str]:
    with psycopg.connect(admin_url()) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (restore_test.SCRATCH_PREFIX + "%",))
        return {name for (name,) in rows}


def _exists(name: str) -> bool:
    return name in _scratch_databases()


def test_restore_test_passes_and_drops_its_scratch_database(snapshot, copy, capsys):
    _, url = snapshot
    with environment(BACKUP_ROOT=str(copy), DATABASE_URL=url, NEW_DATABASE_URL=None):
        assert main(["verify", "--restore-test"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "restore test passed" in out
    record = json.loads((copy / KEY / "verified.json").read_text())
    result = record["restore_test"]
    assert record["ok"] and result["ok"] and result["dropped"]
    assert result["tables"] == 10 and result["rows"] == 277 and result["mismatches"] == []
    assert result["database"].startswith(restore_test.SCRATCH_PREFIX) and not _exists(result["database"])
    assert verify.is_verified(SnapshotStore(str(copy), KEY), restore_tested=True)
    with environment(BACKUP_ROOT=str(copy)):
        assert main(["list"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[-2] == "restore-tested"


def test_a_failing_restore_is_recorded_and_still_drops_the_scratch_database(snapshot, copy):
    _, url = snapshot
    manifest = copy / KEY / "manifest.json"
    body = json.loads(manifest.read_text())
    body["tables"]["public.users"]["checksum"] = "12345"  # the data no longer matches what the manifest promises
    manifest.write_text(json.dumps(body))
    result = restore_test.run(SnapshotStore(str(copy), KEY), url)
    assert result["ok"] is False and "public.users" in result["error"]
    assert result["dropped"] and not _exists(result["database"])


def test_restore_that_cannot_even_start_drops_the_scratch_database(snapshot, copy):
    _, url = snapshot
    for part in (copy / KEY / "tables" / "users").glob("*.parquet"):
        part.unlink()
    result = restore_test.run(SnapshotStore(str(copy), KEY), url)
    assert result["ok"] is False and result["error"]
    assert result["dropped"] and not _exists(result["database"])


def test_scratch_drop_refuses_foreign_names(snapshot):
    _, url = snapshot
    with pytest.raises(ValueError):
        restore_test.drop_scratch(url, "skillswap_demo")


def test_verify_job_with_restore_test(snapshot, copy):
    _, url = snapshot
    with environment(DATABASE_URL=url, NEW_DATABASE_URL=None), dg.instance_for_test() as instance:
        result = verify_job.execute_in_process(
            run_config=verify_run_config(snapshot=KEY, restore_test=True), instance=instance,
            resources={"storage": BackupStorage(root=str(copy))}, raise_on_error=False,
        )
    assert result.success
    record = json.loads((copy / KEY / "verified.json").read_text())
    assert record["restore_test"]["ok"] and not _exists(record["restore_test"]["database"])


def test_a_role_without_createdb_gets_one_clear_line(snapshot, copy):
    import secrets
    import uuid
    from urllib.parse import urlsplit

    from psycopg import sql

    name, password = f"ssb_test_nocreatedb_{uuid.uuid4().hex[:8]}", secrets.token_hex(8)
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOCREATEDB PASSWORD {}").format(sql.Identifier(name), sql.Literal(password)))
    try:
        parts = urlsplit(admin_url())
        url = parts._replace(netloc=f"{name}:{password}@{parts.hostname}:{parts.port or 5432}").geturl()
        result = restore_test.run(SnapshotStore(str(copy), KEY), url)
    finally:
        with psycopg.connect(admin_url(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))
    assert result["ok"] is False and result["database"] is None
    assert "lacks CREATEDB" in result["error"] and password not in result["error"]
