"""Verify on an encrypted snapshot: bytes and sha256 without the key; rows too once the key is given."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from skillswap_backup.lib import encryption, verify
from skillswap_backup.lib.storage import SnapshotStore
from skillswap_backup_tests.lifecycle_support import backup_partition, demo_source, environment

KEY = "2026-06-07"


@pytest.fixture(scope="module")
def encrypted(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("encrypted")
    identity = tmp / "backup-key.txt"
    recipient = encryption.write_identity_file(identity)
    # The identity is set during the backup too: the manifest step reads the (encrypted) meta files.
    with demo_source("ssb_test_lc_enc", tmp), environment(BACKUP_AGE_RECIPIENTS=recipient, BACKUP_AGE_IDENTITY=str(identity)):
        with dg.instance_for_test() as instance:
            backup_partition(KEY, instance)
        yield tmp / "backups", identity


def test_without_the_key_hashes_are_checked_and_rows_are_noted(encrypted):
    root, _ = encrypted
    store = SnapshotStore(str(root), KEY, encryption_config=encryption.EncryptionConfig())
    assert any(p.endswith(".age") for p in store.list_files())
    report = verify.verify_snapshot(store)
    assert report.ok and report.tables_checked == 0
    assert any("BACKUP_AGE_IDENTITY" in note for note in report.notes)


def test_with_the_key_rows_are_checked(encrypted):
    root, identity = encrypted
    config = encryption.config_from_env({"BACKUP_AGE_IDENTITY": str(identity)})
    report = verify.verify_snapshot(SnapshotStore(str(root), KEY, encryption_config=config))
    assert report.ok and report.notes == []
    assert report.tables_checked == 10 and report.rows_checked == 277


def test_a_flipped_byte_in_an_encrypted_part_is_caught_without_the_key(encrypted, tmp_path):
    root, _ = encrypted
    import shutil

    shutil.copytree(root / KEY, tmp_path / KEY)
    (part,) = (tmp_path / KEY / "tables" / "users").glob("*.age")
    data = bytearray(part.read_bytes())
    data[-10] ^= 0xFF
    part.write_bytes(bytes(data))
    problems = verify.verify_snapshot(SnapshotStore(str(tmp_path), KEY, encryption_config=encryption.EncryptionConfig())).problems
    assert [(p.kind, p.path) for p in problems] == [("corrupt", f"tables/users/{part.name}")]
