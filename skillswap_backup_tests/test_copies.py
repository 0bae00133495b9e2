"""Copies in several places: `backup` with BACKUP_COPIES copies its encrypted snapshot to a local
folder and an S3 bucket (SeaweedFS), byte for byte and verified; a restore from a copy gives back
every row; a damaged original is never copied as good; a re-copy removes what the snapshot no
longer has; one bad destination does not stop the others; the Dagster copy job and the sensor
that launches it after a backup run."""

from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path

import dagster as dg
import pytest

from skillswap_backup.defs.lifecycle.copies import COPIED_BY_CLI_TAG, COPY_JOB, COPY_SENSOR, copy_run_config
from skillswap_backup.definitions import build_definitions
from skillswap_backup.lib.storage import SnapshotStore
from skillswap_backup_tests.lifecycle_support import (
    backup_partition, cli_env, cli_instance, copy_snapshot, demo_source, environment, step_failures,
)
from skillswap_backup_tests.pgtools import scratch_database
from skillswap_backup_tests.restore_support import one_line, rows_as_text, run_cli
from skillswap_backup_tests.s3_support import seaweedfs
from skillswap_backup_tests.test_storage_s3 import TABLES

KEY = "2026-11-22"


def _digests(files: dict[str, bytes]) -> dict[str, str]:
    return {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}


def _local_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def copied(tmp_path_factory):
    """The demo database backed up by the CLI, encrypted, with copies to a folder and a bucket."""
    from skillswap_backup.lib import encryption

    tmp = tmp_path_factory.mktemp("copies")
    identity = tmp / "backup-key.txt"
    recipient = encryption.write_identity_file(identity)
    with seaweedfs(tmp / "seaweedfs") as s3, demo_source("ssb_test_copies", tmp) as url, cli_instance(tmp) as instance_env:
        fs = s3.filesystem()
        bucket = f"ssb-copies-{uuid.uuid4().hex[:8]}"
        s3.make_bucket(fs, bucket)
        env = cli_env(
            DATABASE_URL=url, BACKUP_ROOT=str(tmp / "backups"), BACKUP_CATALOG=str(tmp / "catalog.json"),
            BACKUP_AGE_RECIPIENTS=recipient, BACKUP_AGE_IDENTITY=str(identity),
            BACKUP_COPIES=f"{tmp / 'usb'},s3://{bucket}/skillswap", **instance_env, **s3.env(),
        )
        backup = run_cli("backup", "--partition", KEY, env=env)
        assert backup.returncode == 0, backup.stderr[-3000:]
        yield tmp, url, env, backup, fs, bucket


def test_backup_copies_its_snapshot_byte_for_byte_to_every_destination(copied):
    tmp, _, _, backup, fs, bucket = copied
    original = _local_files(tmp / "backups" / KEY)
    assert "manifest.json" in original and "tables/users/part-00000.parquet.age" in original
    assert any(p.startswith("reports/") for p in original)
    assert f"copied snapshot {KEY} to {tmp / 'usb' / KEY}: 36 files" in backup.stdout
    assert f"copied snapshot {KEY} to s3://{bucket}/skillswap/{KEY}: 36 files" in backup.stdout
    on_usb = _local_files(tmp / "usb" / KEY)
    expected = _digests({p: d for p, d in original.items() if p != "verified.json"})
    assert _digests({p: d for p, d in on_usb.items() if p != "verified.json"}) == expected
    prefix = f"{bucket}/skillswap/{KEY}/"
    in_bucket = {path[len(prefix):]: fs.cat(path) for path in fs.find(prefix)}
    assert _digests({p: d for p, d in in_bucket.items() if p != "verified.json"}) == expected
    # Each copy was read back and its verification recorded there, bound to the same manifest.
    for verification in (on_usb["verified.json"], in_bucket["verified.json"]):
        assert b'"ok": true' in verification
        assert hashlib.sha256(original["manifest.json"]).hexdigest().encode() in verification


def test_a_copy_lists_verifies_and_restores_every_row(copied):
    tmp, url, env, _, _, bucket = copied
    for root in (str(tmp / "usb"), f"s3://{bucket}/skillswap"):
        listed = run_cli("list", env={**env, "BACKUP_ROOT": root})
        assert listed.returncode == 0, listed.stderr
        (line,) = [line for line in listed.stdout.splitlines() if line.startswith(KEY)]
        assert line.split()[2:4] == ["10", "277"]
    verified = run_cli("verify", KEY, env={**env, "BACKUP_ROOT": str(tmp / "usb")})
    assert verified.returncode == 0, verified.stderr[-3000:]
    assert "rows of 10 tables (277 rows) match" in verified.stdout
    with scratch_database("ssb_test_copies_target") as target:
        restored = run_cli("restore", "--snapshot", KEY, "--target-url", target, env={**env, "BACKUP_ROOT": f"s3://{bucket}/skillswap"})
        assert restored.returncode == 0, restored.stderr[-3000:]
        for table in TABLES:
            assert rows_as_text(target, table) == rows_as_text(url, table), table


def test_a_damaged_original_is_not_copied(copied, tmp_path):
    tmp, _, env, _, _, _ = copied
    shutil.copytree(tmp / "backups" / KEY, tmp_path / "backups" / KEY)
    damaged = tmp_path / "backups" / KEY / "tables" / "users" / "part-00000.parquet.age"
    data = bytearray(damaged.read_bytes())
    data[200] ^= 0xFF
    damaged.write_bytes(bytes(data))
    result = run_cli("copy", KEY, "--to", str(tmp_path / "copy"), env={**env, "BACKUP_ROOT": str(tmp_path / "backups")})
    assert result.returncode == 1, result.stdout
    one_line(result.stderr, "tables/users/part-00000.parquet.age does not match its manifest", f"skillswap-backup verify {KEY}")
    left = _local_files(tmp_path / "copy" / KEY)
    assert "manifest.json" not in left and "tables/users/part-00000.parquet.age" not in left
    assert not [p for p in left if ".tmp-" in p]
    listed = run_cli("list", env={**env, "BACKUP_ROOT": str(tmp_path / "copy")})
    assert "no complete snapshots" in listed.stdout


def test_copying_again_replaces_the_copy_and_removes_stale_files(copied):
    tmp, _, env, _, _, _ = copied
    stale = tmp / "usb" / KEY / "tables" / "users" / "part-00007.parquet.age"
    stale.write_bytes(b"left by an earlier copy")
    result = run_cli("copy", "--to", str(tmp / "usb"), env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "removed 1 files an earlier copy left" in result.stdout
    assert not stale.exists()
    assert run_cli("verify", KEY, env={**env, "BACKUP_ROOT": str(tmp / "usb")}).returncode == 0


def test_one_bad_destination_does_not_stop_the_others(copied, tmp_path):
    _, _, env, _, _, _ = copied
    (tmp_path / "a-file").write_text("not a folder")
    result = run_cli("copy", KEY, "--to", str(tmp_path / "a-file" / "x"), "--to", str(tmp_path / "good"), env=env)
    assert result.returncode == 1
    one_line(result.stderr, f"copy to {tmp_path / 'a-file' / 'x'} failed", "cannot write to BACKUP_COPIES", "Not a directory")
    assert f"copied snapshot {KEY} to {tmp_path / 'good' / KEY}" in result.stdout
    assert (tmp_path / "good" / KEY / "manifest.json").exists()


def test_copy_all_copies_every_complete_snapshot(copied, tmp_path):
    tmp, _, env, _, _, _ = copied
    for week in (KEY, "2026-11-15"):
        copy_snapshot(tmp / "backups", KEY, tmp_path / "backups", week)
    (tmp_path / "backups" / "2026-11-08").mkdir()  # a backup interrupted before its manifest: not a snapshot
    here = {**env, "BACKUP_ROOT": str(tmp_path / "backups")}
    result = run_cli("copy", "--all", "--to", str(tmp_path / "drive"), env=here)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "drive").iterdir()) == ["2026-11-15", KEY]
    listed = run_cli("list", env={**env, "BACKUP_ROOT": str(tmp_path / "drive")})
    assert [line.split()[0] for line in listed.stdout.splitlines() if line.startswith("2026-")] == ["2026-11-15", KEY]
    one_line(run_cli("copy", "--all", KEY, "--to", str(tmp_path / "drive"), env=here).stderr, "a snapshot or --all, not both")


def test_bad_requests_are_one_line(copied):
    tmp, _, env, _, _, _ = copied
    nowhere = {k: v for k, v in env.items() if k != "BACKUP_COPIES"}
    one_line(run_cli("copy", env=nowhere).stderr, "no destination: set BACKUP_COPIES")
    one_line(run_cli("copy", "--to", str(tmp / "backups"), env=env).stderr, "is BACKUP_ROOT itself")
    one_line(run_cli("copy", "2020-01-05", env=env).stderr, "'2020-01-05' is not a complete snapshot")
    same = run_cli("backup", "--partition", KEY, env={**env, "BACKUP_COPIES": str(tmp / "backups") + "/"})
    assert same.returncode == 1
    one_line(same.stderr, "is BACKUP_ROOT itself")
    assert "backing up" not in same.stdout  # refused before any run


WEEKS = ["2026-11-01", "2026-11-08", "2026-11-15", "2026-11-22"]  # oldest first


def _weeks_in(fs, folder: str) -> list[str]:
    return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(folder, detail=False) if fs.exists(f"{p}/manifest.json"))


def test_prune_keeps_each_place_by_what_verified_there(copied, tmp_path):
    """The oldest week is the only one verified in BACKUP_ROOT, so nothing goes there; every copy
    verified when it was made, so each copy place keeps just the newest week."""
    tmp, _, env, _, fs, bucket = copied
    for week in WEEKS:
        copy_snapshot(tmp / "backups", KEY, tmp_path / "backups", week)
    root = {**env, "BACKUP_ROOT": str(tmp_path / "backups")}
    assert run_cli("verify", WEEKS[0], env=root).returncode == 0
    place = f"s3://{bucket}/prune-{uuid.uuid4().hex[:6]}"
    copied_all = run_cli("copy", "--all", "--to", str(tmp_path / "usb"), "--to", place, env=root)
    assert copied_all.returncode == 0, copied_all.stderr[-3000:]
    everywhere = {**root, "BACKUP_COPIES": f"{tmp_path / 'usb'},{place}"}

    dry = run_cli("prune", "--keep", "1", "--dry-run", env=everywhere)
    assert dry.returncode == 0, dry.stderr[-3000:]
    sections = dry.stdout.split(f"BACKUP_COPIES {place}:")
    assert f"BACKUP_ROOT {tmp_path / 'backups'}:" in sections[0] and "dry run: 0 of 4" in sections[0]
    assert f"BACKUP_COPIES {tmp_path / 'usb'}:" in sections[0] and "dry run: 3 of 4" in sections[0]
    assert "would delete 2026-11-01" in sections[1] and "dry run: 3 of 4" in sections[1]
    assert _weeks_in(fs, place) == WEEKS and sorted(p.name for p in (tmp_path / "usb").iterdir()) == WEEKS

    pruned = run_cli("prune", "--keep", "1", env=everywhere)
    assert pruned.returncode == 0, pruned.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "backups").iterdir()) == WEEKS
    assert sorted(p.name for p in (tmp_path / "usb").iterdir()) == WEEKS[-1:]
    assert _weeks_in(fs, place) == WEEKS[-1:]
    assert pruned.stdout.count("deleted 3 of 4 snapshots: 2026-11-15, 2026-11-08, 2026-11-01") == 2
    kept = run_cli("verify", WEEKS[-1], env={**env, "BACKUP_ROOT": place})
    assert kept.returncode == 0, kept.stderr[-3000:]


def test_prune_reports_a_place_it_cannot_reach_and_prunes_the_others(copied, tmp_path):
    tmp, _, env, _, _, bucket = copied
    for week in WEEKS:
        copy_snapshot(tmp / "backups", KEY, tmp_path / "backups", week)
    root = {**env, "BACKUP_ROOT": str(tmp_path / "backups")}
    assert run_cli("verify", WEEKS[-1], env=root).returncode == 0
    refused = {**root, "AWS_SECRET_ACCESS_KEY": "not-the-secret", "BACKUP_COPIES": f"s3://{bucket}/skillswap"}
    result = run_cli("prune", "--keep", "2", env=refused)
    assert result.returncode == 1
    one_line(result.stderr, f"pruning BACKUP_COPIES s3://{bucket}/skillswap failed", "refused access")
    assert "not-the-secret" not in result.stdout + result.stderr
    assert sorted(p.name for p in (tmp_path / "backups").iterdir()) == WEEKS[2:]
    same = run_cli("prune", env={**root, "BACKUP_COPIES": str(tmp_path / "backups")})
    assert same.returncode == 1
    one_line(same.stderr, "is BACKUP_ROOT itself")


def test_the_sensor_copies_each_backup_run_and_the_copy_job_verifies(tmp_path):
    copies_root = tmp_path / "copies"
    with demo_source("ssb_test_copies_dagster", tmp_path), dg.instance_for_test() as instance:
        with environment(BACKUP_COPIES=str(copies_root)):
            backup = backup_partition(KEY, instance)
            definitions = build_definitions()
            sensor = definitions.get_sensor_def(COPY_SENSOR)
            run = instance.get_run_by_id(backup.run_id)

            def evaluate(of_run):
                context = dg.build_run_status_sensor_context(
                    sensor_name=COPY_SENSOR, dagster_event=backup.get_run_success_event(), dagster_instance=instance,
                    dagster_run=of_run,
                )
                return sensor(context)

            request = evaluate(run)
            assert isinstance(request, dg.RunRequest)
            assert request.run_config == copy_run_config(snapshot=KEY)
            assert "came from the CLI" in evaluate(run.with_tags({**run.tags, COPIED_BY_CLI_TAG: "true"})).skip_message

            job = definitions.resolve_job_def(COPY_JOB)
            copied = job.execute_in_process(run_config=request.run_config, instance=instance)
            assert copied.success
            original = _local_files(tmp_path / "backups" / KEY)
            on_copy = _local_files(copies_root / KEY)
            assert on_copy["manifest.json"] == original["manifest.json"]
            assert set(on_copy) == set(original) | {"verified.json"}
            (observation,) = [
                e.event_specific_data.asset_observation for e in copied.all_events if e.event_type_value == "ASSET_OBSERVATION"
            ]
            assert observation.partition == KEY
            assert observation.metadata["copies"].value == str(copies_root)
            assert SnapshotStore(str(copies_root), KEY).exists("verified.json")
            # The copy run itself (or any run that wrote no manifest) launches nothing.
            assert "wrote no snapshot manifest" in evaluate(instance.get_run_by_id(copied.run_id)).skip_message

            (tmp_path / "a-file").write_text("")
            failed = job.execute_in_process(
                run_config=copy_run_config(snapshot=KEY, to=str(tmp_path / "a-file" / "x")), instance=instance,
                raise_on_error=False,
            )
            assert not failed.success
            assert any("cannot write to BACKUP_COPIES" in m for m in step_failures(failed))

        with environment(BACKUP_COPIES=None):
            assert "BACKUP_COPIES is not set" in evaluate(run).skip_message


def test_prune_says_when_a_copy_place_does_not_exist(copied, tmp_path):
    """An unmounted drive or a bucket never made holds nothing to prune, and prune says why."""
    tmp, _, env, _, _, _ = copied
    copy_snapshot(tmp / "backups", KEY, tmp_path / "backups", WEEKS[0])
    missing_bucket = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/skillswap"
    places = {**env, "BACKUP_ROOT": str(tmp_path / "backups"), "BACKUP_COPIES": f"{tmp_path / 'usb'},{missing_bucket}"}
    result = run_cli("prune", env=places)
    assert result.returncode == 0, result.stderr[-3000:]
    for place in (tmp_path / "usb", missing_bucket):
        assert f"no complete snapshots in {place} (it does not exist: a drive not mounted, a bucket not made?)" in result.stdout
    assert f"keep   {WEEKS[0]}" in result.stdout
