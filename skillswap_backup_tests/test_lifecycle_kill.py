"""A backup killed mid-run (SIGKILL of the real CLI process) leaves no listed snapshot and does not
damage the previous one; re-running the partition afterwards completes it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import dagster as dg
import pytest

from skillswap_backup.lib import verify
from skillswap_backup.lib.manifest import list_snapshots, read_manifest
from skillswap_backup.lib.storage import SnapshotStore
from skillswap_backup_tests.lifecycle_support import CLI, cli_env, cli_instance, demo_source, environment

PREVIOUS, KILLED = "2026-02-01", "2026-02-08"
SCALE = 300  # ~82k rows: a few seconds of table steps, room to kill between the first and the last


def _backup(env: dict[str, str], key: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([CLI, "backup", "--partition", key], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **popen)


def _kill_after_first_table(process: subprocess.Popen, folder: Path, timeout: float = 120) -> list[str]:
    """SIGKILL the backup's process group as soon as one table has been written; return what was there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        meta = sorted(p.name for p in (folder / "meta").glob("*.json")) if (folder / "meta").is_dir() else []
        if meta:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
            return meta
        if process.poll() is not None:
            pytest.fail(f"the backup ended before it could be killed:\n{process.stdout.read()[-3000:]}")
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    pytest.fail("no table was written in time")


def test_killed_backup_is_not_listed_and_the_previous_snapshot_still_verifies(tmp_path):
    with demo_source("ssb_test_lc_kill", tmp_path, scale=SCALE) as url, cli_instance(tmp_path) as instance_env:
        root = tmp_path / "backups"
        env = cli_env(DATABASE_URL=url, BACKUP_ROOT=str(root), BACKUP_CATALOG=str(tmp_path / "catalog.json"), **instance_env)
        first = _backup(env, PREVIOUS)
        assert first.wait(timeout=300) == 0, first.stdout.read()[-3000:]
        before = {p.relative_to(root / PREVIOUS): p.read_bytes() for p in (root / PREVIOUS).rglob("*") if p.is_file()}
        assert verify.verify_snapshot(SnapshotStore(str(root), PREVIOUS)).ok

        killed = _backup(env, KILLED, start_new_session=True)
        written = _kill_after_first_table(killed, root / KILLED)
        assert killed.returncode == -signal.SIGKILL
        assert written, "the kill came after at least one table was written"
        assert not (root / KILLED / "manifest.json").exists()
        assert list_snapshots(str(root)) == [PREVIOUS]
        # The previous snapshot: byte for byte what it was, and it verifies.
        after = {p.relative_to(root / PREVIOUS): p.read_bytes() for p in (root / PREVIOUS).rglob("*") if p.is_file()}
        assert after == before
        report = verify.verify_snapshot(SnapshotStore(str(root), PREVIOUS))
        assert report.ok and report.files == len(read_manifest(SnapshotStore(str(root), PREVIOUS))["files"])

        # Re-running the killed partition completes it, and first closes the killed run in the UI.
        rerun = _backup(env, KILLED)
        output = rerun.communicate(timeout=300)[0]
        assert rerun.returncode == 0, output[-3000:]
        with environment(**instance_env), dg.DagsterInstance.get() as instance:
            runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": KILLED}))
            assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE]
        assert f"marked run {runs[1].run_id} failed: the skillswap-backup process running it was killed" in output
        assert list_snapshots(str(root)) == [PREVIOUS, KILLED]
        assert verify.verify_snapshot(SnapshotStore(str(root), KILLED)).ok
        body = read_manifest(SnapshotStore(str(root), KILLED))
        assert sum(t["rows"] for t in body["tables"].values()) == sum(
            t["rows"] for t in read_manifest(SnapshotStore(str(root), PREVIOUS))["tables"].values()
        )
