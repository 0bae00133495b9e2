"""Retention on real snapshot folders: keep the newest N, never trade away the last verified snapshot."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from skillswap_backup.cli.main import main
from skillswap_backup.defs.lifecycle.jobs import prune_job
from skillswap_backup.defs.resources import BackupStorage
from skillswap_backup.lib import retention, verify
from skillswap_backup.lib.manifest import list_snapshots
from skillswap_backup.lib.storage import SnapshotStore
from skillswap_backup_tests.lifecycle_support import backup_partition, copy_snapshot, demo_source, environment

KEY = "2026-02-01"
WEEKS = ["2026-02-01", "2026-02-08", "2026-02-15", "2026-02-22", "2026-03-01", "2026-03-08"]  # oldest first


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("retention")
    with demo_source("ssb_test_lc_retention", tmp), dg.instance_for_test() as instance:
        assert backup_partition(KEY, instance).success
        yield tmp / "backups"


@pytest.fixture
def root(original, tmp_path) -> Path:
    """Six weekly snapshots (copies of one real snapshot), none verified yet."""
    for week in WEEKS:
        copy_snapshot(original, KEY, tmp_path, week)
    return tmp_path


def _verify(root: Path, *weeks: str) -> None:
    for week in weeks:
        store = SnapshotStore(str(root), week)
        report = verify.verify_snapshot(store)
        assert report.ok
        verify.record(store, report)


def _deleted(decisions) -> list[str]:
    return sorted(d.key for d in decisions if d.delete)


def test_keeps_newest_n_once_a_newer_snapshot_verified(root):
    _verify(root, "2026-03-08")
    decisions = retention.plan(str(root), keep=3)
    assert [d.key for d in decisions] == list(reversed(WEEKS))
    assert _deleted(decisions) == ["2026-02-01", "2026-02-08", "2026-02-15"]
    assert retention.apply(str(root), decisions) == ["2026-02-15", "2026-02-08", "2026-02-01"]
    assert list_snapshots(str(root)) == WEEKS[3:]
    assert sorted(p.name for p in root.iterdir()) == WEEKS[3:]


def test_deletes_nothing_while_no_snapshot_has_verified(root):
    assert _deleted(retention.plan(str(root), keep=2)) == []


def test_never_deletes_the_only_verified_snapshot(root):
    _verify(root, "2026-02-01")  # the oldest is the only verified one
    decisions = retention.plan(str(root), keep=1)
    assert _deleted(decisions) == []
    assert "newest verified" in decisions[-1].reason


def test_deletes_only_what_is_older_than_a_verified_snapshot(root):
    _verify(root, "2026-02-08")
    assert _deleted(retention.plan(str(root), keep=2)) == ["2026-02-01"]


def test_a_verification_voided_by_a_new_manifest_does_not_count(root):
    _verify(root, "2026-03-08")
    manifest = root / "2026-03-08" / "manifest.json"
    body = json.loads(manifest.read_text())
    body["finished_at"] = "2030-01-01T00:00:00+00:00"
    manifest.write_text(json.dumps(body))
    assert _deleted(retention.plan(str(root), keep=2)) == []


def test_a_failed_verification_does_not_count(root):
    _verify(root, "2026-03-08")
    (root / "2026-03-08" / "json" / "users.json").write_text("[]\n")
    store = SnapshotStore(str(root), "2026-03-08")
    verify.record(store, verify.verify_snapshot(store))
    assert _deleted(retention.plan(str(root), keep=2)) == []


def test_incomplete_folders_are_left_alone(root):
    (root / "2026-01-25" / "tables").mkdir(parents=True)  # an interrupted run: no manifest
    _verify(root, "2026-03-08")
    retention.apply(str(root), retention.plan(str(root), keep=1))
    assert retention.incomplete_folders(str(root)) == ["2026-01-25"]
    assert (root / "2026-01-25" / "tables").is_dir()
    assert list_snapshots(str(root)) == ["2026-03-08"]


def test_cli_dry_run_shows_and_deletes_nothing_then_prunes(root, capsys):
    _verify(root, "2026-03-01")
    with environment(BACKUP_ROOT=str(root), BACKUP_KEEP="4"):
        assert main(["prune", "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert "would delete 2026-02-01" in out and "would delete 2026-02-08" in out
        assert "dry run: 2 of 6" in out
        assert list_snapshots(str(root)) == WEEKS
        assert main(["prune", "--keep", "5"]) == 0
        assert "deleted 1 of 6 snapshots: 2026-02-01" in capsys.readouterr().out
        assert list_snapshots(str(root)) == WEEKS[1:]
        assert main(["prune", "--keep", "0"]) == 1


def test_prune_job_in_dagster(root):
    _verify(root, "2026-03-08")
    with dg.instance_for_test() as instance:
        resources = {"storage": BackupStorage(root=str(root))}
        dry = prune_job.execute_in_process(
            run_config={"ops": {"prune_snapshots": {"config": {"keep": 2, "dry_run": True}}}},
            instance=instance, resources=resources,
        )
        assert dry.success and list_snapshots(str(root)) == WEEKS
        real = prune_job.execute_in_process(
            run_config={"ops": {"prune_snapshots": {"config": {"keep": 2}}}}, instance=instance, resources=resources
        )
        assert real.success and list_snapshots(str(root)) == WEEKS[-2:]


def test_prune_job_prunes_every_copy_place_on_its_own(root, tmp_path_factory):
    usb = tmp_path_factory.mktemp("usb")
    for week in WEEKS[:3]:
        copy_snapshot(root, week, usb)
    _verify(root, "2026-03-08")
    _verify(usb, "2026-02-15")
    with dg.instance_for_test() as instance, environment(BACKUP_COPIES=str(usb)):
        result = prune_job.execute_in_process(
            run_config={"ops": {"prune_snapshots": {"config": {"keep": 1}}}},
            instance=instance, resources={"storage": BackupStorage(root=str(root))},
        )
        assert result.success
        assert list_snapshots(str(root)) == WEEKS[-1:]
        assert list_snapshots(str(usb)) == ["2026-02-15"]
        logged = [e.message for e in instance.all_logs(result.run_id) if e.message]
        assert any(f"BACKUP_COPIES {usb}:" == m for m in logged)
        assert any("deleted 2 of 3 snapshots: 2026-02-08, 2026-02-01" in m for m in logged)
