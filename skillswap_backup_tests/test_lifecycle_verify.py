"""Manifest contents and verify: a real backup, then flipped bytes, truncation, missing and extra files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from skillswap_backup.cli.main import build_parser, main
from skillswap_backup.lib import verify
from skillswap_backup.lib.demo_db import DEMO_COUNTS
from skillswap_backup.lib.manifest import list_snapshots, read_manifest
from skillswap_backup.lib.storage import SnapshotStore
from skillswap_backup_tests.lifecycle_support import backup_partition, copy_snapshot, demo_source, environment
from skillswap_backup_tests.pgtools import scratch_database

KEY = "2026-03-01"


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory) -> tuple[Path, str]:
    """One real backup of the demo database: (backup root, source URL)."""
    tmp = tmp_path_factory.mktemp("verify")
    with demo_source("ssb_test_lc_verify", tmp) as url, dg.instance_for_test() as instance:
        result = backup_partition(KEY, instance)
        assert result.success
        yield tmp / "backups", url


@pytest.fixture
def copy(snapshot, tmp_path) -> tuple[Path, SnapshotStore]:
    """A private copy of the snapshot to damage."""
    root, _ = snapshot
    copy_snapshot(root, KEY, tmp_path)
    return tmp_path, SnapshotStore(str(tmp_path), KEY)


def test_manifest_records_everything_a_restore_and_an_audit_need(snapshot):
    root, url = snapshot
    body = read_manifest(SnapshotStore(str(root), KEY))
    assert body["partition_key"] == KEY
    assert body["started_at"] <= body["finished_at"]
    assert body["source"]["database"] == url.rsplit("/", 1)[1]
    assert body["source"]["server_version"].split(".")[0].isdigit()
    assert body["tool_version"] not in ("", "unknown")
    assert body["snapshot_id"]
    expected = {f"public.{t}": n for t, n in DEMO_COUNTS.items()}
    assert {k: v["rows"] for k, v in body["tables"].items() if k.startswith("public.")} == expected
    catalog_tables = {f"{t['schema']}.{t['name']}": t for t in body["catalog"]["tables"]}
    assert set(catalog_tables) == set(body["tables"])
    users = catalog_tables["public.users"]
    assert users["primary_key"] == ["id"] and users["tier"] == "critical"
    assert {c["name"]: c["pg_type"] for c in users["columns"]}["email"].startswith(("text", "character varying"))
    on_disk = {p for p in SnapshotStore(str(root), KEY).list_files() if not p.startswith("reports/")}
    assert {f["path"] for f in body["files"]} == on_disk - {"manifest.json", "verified.json"}
    for entry in body["files"]:
        assert len(entry["sha256"]) == 64 and entry["bytes"] > 0
        if ".parquet" in entry["path"]:
            assert entry["rows"] == pq.ParquetFile(root / KEY / entry["path"]).metadata.num_rows
    for name, table in body["tables"].items():
        json_files = [f for f in body["files"] if f["path"] in table["files"] and f["path"].startswith("json/")]
        assert [f["rows"] for f in json_files] == [table["rows"]], name
    assert "postgres@" not in json.dumps(body) and "password=" not in json.dumps(body)


def test_clean_snapshot_verifies_and_records_it(copy):
    root, store = copy
    report = verify.verify_snapshot(store)
    assert report.problems == [] and report.ok
    assert report.files == len(read_manifest(store)["files"])
    verify.record(store, report)
    assert verify.is_verified(store)
    assert not verify.is_verified(store, restore_tested=True)


def _problems(store) -> list[tuple[str, str]]:
    return [(p.kind, p.path) for p in verify.verify_snapshot(store).problems]


def test_flipped_byte_is_reported_by_name(copy):
    root, store = copy
    target = root / KEY / "tables" / "users" / "part-00000.parquet"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    assert _problems(store) == [("corrupt", "tables/users/part-00000.parquet")]


def test_truncated_file_is_reported_by_name(copy):
    root, store = copy
    target = root / KEY / "json" / "skills.json"
    target.write_bytes(target.read_bytes()[:-100])
    assert _problems(store) == [("truncated", "json/skills.json")]


def test_missing_and_extra_files_are_reported_by_name(copy):
    root, store = copy
    (root / KEY / "tables" / "swap_ratings" / "part-00000.parquet").unlink()
    (root / KEY / "tables" / "swap_ratings" / "part-00001.parquet").write_bytes(b"stray")
    (root / KEY / "notes.txt").write_text("not part of the snapshot")
    assert sorted(_problems(store)) == [
        ("extra", "notes.txt"),
        ("extra", "tables/swap_ratings/part-00001.parquet"),
        ("missing", "tables/swap_ratings/part-00000.parquet"),
    ]


def test_reports_written_after_the_manifest_are_not_extra_files(copy):
    root, store = copy
    (root / KEY / "reports").mkdir(exist_ok=True)
    (root / KEY / "reports" / "index.html").write_text("<html></html>")
    assert _problems(store) == []


def test_rows_are_checked_even_when_the_hash_matches(copy):
    """A file rewritten with its manifest entry updated to match still has to hold the rows."""
    root, store = copy
    target = root / KEY / "tables" / "skills" / "part-00000.parquet"
    table = pq.read_table(target)
    pq.write_table(table.slice(0, 100), target)
    body = json.loads((root / KEY / "manifest.json").read_text())
    fresh = store.describe("tables/skills/part-00000.parquet")
    for entry in body["files"]:
        if entry["path"] == fresh.path:
            entry.update(bytes=fresh.bytes, sha256=fresh.sha256)
    (root / KEY / "manifest.json").write_text(json.dumps(body))
    problems = verify.verify_snapshot(store).problems
    assert [(p.kind, p.path) for p in problems] == [
        ("rows", "tables/skills/part-00000.parquet"),
        ("rows", "public.skills"),
    ]
    assert "100 rows, the manifest says 127" in problems[0].detail


def test_a_changed_manifest_voids_an_earlier_verification(copy):
    root, store = copy
    verify.record(store, verify.verify_snapshot(store))
    assert verify.is_verified(store)
    body = json.loads((root / KEY / "manifest.json").read_text())
    body["finished_at"] = "2030-01-01T00:00:00+00:00"  # as a re-run of the partition would
    (root / KEY / "manifest.json").write_text(json.dumps(body))
    assert verify.read_verification(store) is None and not verify.is_verified(store)


def test_cli_verify_exits_non_zero_naming_the_bad_file(copy, capsys):
    root, store = copy
    with environment(BACKUP_ROOT=str(root)):
        assert main(["list"]) == 0
        assert capsys.readouterr().out.splitlines()[1].split()[-2:] == ["-", "passed"]
        assert main(["verify"]) == 0
        assert f"snapshot {KEY} verified" in capsys.readouterr().out
        assert main(["list"]) == 0
        assert capsys.readouterr().out.splitlines()[1].split()[-2:] == ["verified", "passed"]
        (root / KEY / "json" / "users.json").unlink()
        assert main(["verify", KEY]) == 1
    captured = capsys.readouterr()
    assert "missing: json/users.json" in captured.out
    err_lines = captured.err.strip().splitlines()
    assert len(err_lines) == 1 and "json/users.json" in err_lines[0] and "FAILED" in err_lines[0]
    record = json.loads((root / KEY / "verified.json").read_text())
    assert record["ok"] is False and record["problems"][0]["path"] == "json/users.json"
    with environment(BACKUP_ROOT=str(root)):
        assert main(["list"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[-2:] == ["FAILED", "passed"]


def test_cli_verify_refuses_an_incomplete_or_unknown_snapshot(copy, capsys):
    root, _ = copy
    shutil.copytree(root / KEY, root / "2026-03-08")
    (root / "2026-03-08" / "manifest.json").unlink()
    with environment(BACKUP_ROOT=str(root)):
        assert list_snapshots(str(root)) == [KEY]
        assert main(["verify", "2026-03-08"]) == 1
    assert "not a complete snapshot" in capsys.readouterr().err



def test_every_snapshot_command_takes_the_key_either_way(copy, capsys):
    """`verify KEY` and `verify --snapshot KEY` alike, and so for report, copy and restore."""
    root, _ = copy
    shutil.copytree(root / KEY, root / "2026-03-08")
    with environment(BACKUP_ROOT=str(root)):
        assert main(["verify", "--snapshot", KEY]) == 0  # not the newest: the key was heard
        assert f"verifying snapshot {KEY} at" in capsys.readouterr().out
        assert main(["report", "--snapshot", KEY]) == 0
        assert f"snapshot {KEY}: data quality" in capsys.readouterr().out
        assert main(["copy", KEY, "--to", str(root.parent / "drive")]) == 0
        assert f"copied snapshot {KEY} to {root.parent / 'drive' / KEY}" in capsys.readouterr().out
        assert main(["verify", KEY, "--snapshot", "2026-03-08"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"two snapshots given ({KEY} and 2026-03-08)" in err[0]
        assert main(["verify", KEY, "--snapshot", KEY]) == 0  # the same key twice is no conflict
        capsys.readouterr()
        assert build_parser().parse_args(["backup", "--snapshot", KEY]).partition == KEY  # = --partition
        with scratch_database("ssb_test_lc_verify_target") as target:
            assert main(["restore", "2026-03-15", "--target-url", target]) == 1  # positional, like the others
        assert "'2026-03-15' is not a complete snapshot" in capsys.readouterr().err

def test_verify_job_runs_in_dagster_and_records_an_observation(copy):
    from skillswap_backup.defs.lifecycle.jobs import verify_job, verify_run_config
    from skillswap_backup.defs.resources import BackupStorage

    root, store = copy
    with dg.instance_for_test() as instance:
        result = verify_job.execute_in_process(
            run_config=verify_run_config(snapshot=KEY), instance=instance,
            resources={"storage": BackupStorage(root=str(root))},
        )
        assert result.success
        observations = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
        assert observations[0].event_specific_data.asset_observation.partition == KEY
        assert verify.is_verified(store)
        (root / KEY / "json" / "users.json").write_text("[]\n")
        failed = verify_job.execute_in_process(
            run_config=verify_run_config(), instance=instance,
            resources={"storage": BackupStorage(root=str(root))}, raise_on_error=False,
        )
        assert not failed.success
        failure = [e for e in failed.all_events if e.is_step_failure][0]
        assert "json/users.json" in failure.step_failure_data.error.message
        assert not verify.is_verified(store)
