"""Encryption at rest on real backups: no plaintext file ever appears (snapshot folder or temp dir)
while an encrypted backup runs; Debian's `age` decrypts what it wrote; a wrong key or a damaged
file makes `restore` fail with one line and nothing in the target; encryption that is configured
but cannot be applied fails the run without writing plaintext."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import psycopg
import pyarrow.parquet as pq
import pytest

from skillswap_backup.lib import encryption
from skillswap_backup.lib.quality import redact
from skillswap_backup.lib.storage import SnapshotStore
from skillswap_backup_tests.lifecycle_support import CLI, backup_partition, cli_env, cli_instance, discover, environment, step_failures
from skillswap_backup_tests.pgtools import scratch_database
from skillswap_backup_tests.restore_support import failure_messages, restore_run
from skillswap_backup_tests.security_support import (
    LEGACY_PASSWORDS,
    SESSION_MARKER,
    files_containing,
    is_age_or_age_prefix,
    read_head,
    security_source,
)

KEY = "2026-04-05"


# The first time a process uses `tempfile`, CPython checks that the temp dir is writable by
# writing these four bytes to a randomly named file and unlinking it (tempfile._get_default_tempdir).
TEMPDIR_PROBE = b"blat"


class PlaintextWatch(threading.Thread):
    """Walks folders in a tight loop while a run writes, noting every file whose first bytes are
    not (the start of) an age header. `allowed(label, relpath)` exempts files meant to be plaintext."""

    def __init__(self, folders: dict[str, Path], allowed) -> None:
        super().__init__(name="plaintext-watch", daemon=True)
        self.folders, self.allowed = folders, allowed
        self.stop_event = threading.Event()
        self.seen: set[tuple[str, str]] = set()
        self.in_flight: set[str] = set()
        self.violations: list[tuple[str, str, bytes]] = []
        self.scans = 0

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.scan()
        self.scan()

    def scan(self) -> None:
        self.scans += 1
        for label, root in self.folders.items():
            for folder, _, names in os.walk(root):
                for name in names:
                    path = os.path.join(folder, name)
                    relpath = os.path.relpath(path, root)
                    if self.allowed(label, relpath):
                        continue
                    head = read_head(path)
                    if head is None:
                        continue  # renamed into place or removed since the walk listed it
                    self.seen.add((label, relpath))
                    if name.startswith(".tmp-"):
                        self.in_flight.add(relpath)
                    if not is_age_or_age_prefix(head) and head != TEMPDIR_PROBE:
                        self.violations.append((label, relpath, head))

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=60)


def _plaintext_by_design(label: str, relpath: str) -> bool:
    """manifest.json, reports/ (quality results, Data Docs, and their build folder in TMPDIR), and
    meta/ + extras/ (per-asset records: rows, checksums, file hashes; no row data), which the
    manifest step reads on a backup host that holds only the public key."""
    parts = Path(relpath).parts
    if label == "tmp":
        return parts[0].startswith("skillswap-docs-")
    name = parts[-1]
    return (
        name == "manifest.json"
        or (name.startswith(".tmp-") and name.endswith("-manifest.json"))
        or "reports" in parts[:2]
        or bool({"meta", "extras"} & set(parts[:2]))
    )


@contextmanager
def temp_dir(path: Path):
    """Point Python's tempfile (and child processes, via TMPDIR) at `path` for the block."""
    saved = tempfile.tempdir
    tempfile.tempdir = str(path)
    try:
        with environment(TMPDIR=str(path)):
            yield
    finally:
        tempfile.tempdir = saved


@pytest.fixture(scope="module")
def encrypted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sec_enc")
    identity = tmp / "backup-key.txt"
    recipient = encryption.write_identity_file(identity)
    polled_tmp = tmp / "tmpdir"
    polled_tmp.mkdir()
    with security_source("ssb_test_sec_enc", tmp) as url, dg.instance_for_test() as instance:
        watch = PlaintextWatch({"snapshot": tmp / "backups", "tmp": polled_tmp}, _plaintext_by_design)
        with environment(BACKUP_AGE_RECIPIENTS=recipient, BACKUP_AGE_IDENTITY=str(identity)), temp_dir(polled_tmp):
            watch.start()
            try:
                result = backup_partition(KEY, instance)
            finally:
                watch.stop()
        yield {"url": url, "tmp": tmp, "root": tmp / "backups", "identity": identity, "recipient": recipient,
               "watch": watch, "run": result, "instance": instance}


def test_no_plaintext_file_appears_while_an_encrypted_backup_runs(encrypted):
    watch = encrypted["watch"]
    assert watch.violations == []
    # The watch did see the run: finished files of every kind, and files while they were written.
    seen = {relpath for label, relpath in watch.seen if label == "snapshot"}
    for expected in ("tables/users/part-00000.parquet.age", "json/users.json.age", "dump/full.dump.age",
                     "schema/schema.dump.age", "schema/schema.sql.age"):
        assert f"{KEY}/{expected}" in seen
    assert watch.in_flight, f"no in-flight file seen in {watch.scans} scans"


def test_every_snapshot_file_is_age_except_manifest_and_reports(encrypted):
    folder = encrypted["root"] / KEY
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["encrypted"] is True
    listed = {f["path"]: f for f in manifest["files"]}
    assert all(f["encrypted"] and path.endswith(".age") for path, f in listed.items() if not _plaintext_by_design("snapshot", path))
    on_disk = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    plaintext = [p for p in on_disk if not _plaintext_by_design("snapshot", p)]
    assert plaintext and all(p.endswith(".age") and is_age_or_age_prefix(read_head(folder / p)) for p in plaintext)
    assert set(plaintext) <= set(listed)
    # Reports stay readable, but hold no data of the tables.
    with psycopg.connect(encrypted["url"]) as conn:
        emails = [r[0] for r in conn.execute("SELECT email FROM users")]
    assert (folder / "reports").is_dir()
    for readable in ("reports", "meta", "extras"):
        assert files_containing(folder / readable, ["$2b$", SESSION_MARKER, *LEGACY_PASSWORDS, *emails]) == {}


def test_dagster_event_log_holds_no_row_of_an_encrypted_snapshot(encrypted):
    from dagster._serdes import serialize_value

    with psycopg.connect(encrypted["url"]) as conn:
        people = conn.execute("SELECT email, first_name, last_name FROM users").fetchall()
    text = "\n".join(serialize_value(e) for e in encrypted["instance"].all_logs(encrypted["run"].run_id))
    assert "not shown: the snapshot is encrypted" in text
    values = [e for e, _, _ in people] + [f"| {f} | {l} |" for _, f, l in people]
    assert [v for v in values if v in text] == []


def _age_decrypt(identity: Path, source: Path, out: Path) -> None:
    done = subprocess.run(["age", "-d", "-i", str(identity), "-o", str(out), str(source)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_age_cli_decrypts_a_snapshot_parquet_file(encrypted, tmp_path):
    folder = encrypted["root"] / KEY
    out = tmp_path / "users.parquet"
    _age_decrypt(encrypted["identity"], folder / "tables" / "users" / "part-00000.parquet.age", out)
    table = pq.read_table(out)
    with psycopg.connect(encrypted["url"]) as conn:
        source = conn.execute("SELECT id, email, password FROM users ORDER BY id").fetchall()
    rows = sorted(zip(*(table.column(c).to_pylist() for c in ("id", "email", "password"))))
    assert rows == [tuple(r) for r in source] and len(rows) >= 20
    _age_decrypt(encrypted["identity"], folder / "json" / "users.json.age", tmp_path / "users.json")
    exported = json.loads((tmp_path / "users.json").read_text())
    assert [u["id"] for u in exported] == [r[0] for r in source] and "password" not in exported[0]
    # And the same file does not decrypt with another key.
    other = tmp_path / "other-key.txt"
    encryption.write_identity_file(other)
    refused = subprocess.run(["age", "-d", "-i", str(other), "-o", str(tmp_path / "x"), str(folder / "json" / "users.json.age")],
                             capture_output=True, text=True)
    assert refused.returncode != 0


# ---- restores that must not happen -------------------------------------------------------------


def _copy(encrypted, tmp_path: Path) -> Path:
    root = tmp_path / "backups"
    shutil.copytree(encrypted["root"] / KEY, root / KEY)
    return root


def _user_objects(url: str) -> list[str]:
    """Tables, sequences, views and non-default schemas in a database: empty means nothing was restored."""
    with psycopg.connect(url) as conn:
        relations = conn.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND c.relkind IN ('r', 'S', 'v', 'm', 'p')"
        ).fetchall()
        schemas = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname NOT IN ('public', 'information_schema')"
        ).fetchall()
    return sorted(r[0] for r in relations) + sorted(f"schema {s[0]}" for s in schemas)


def _cli_restore(root: Path, identity: Path, target: str, tmp: Path) -> subprocess.CompletedProcess:
    with cli_instance(tmp) as dagster_env:
        env = cli_env(BACKUP_ROOT=str(root), NEW_DATABASE_URL=target, BACKUP_AGE_IDENTITY=str(identity), **dagster_env)
        return subprocess.run([CLI, "restore", "--snapshot", KEY], env=env, capture_output=True, text=True, timeout=600)


def _one_line(result: subprocess.CompletedProcess, command: str = "restore") -> str:
    """The command's own error: one line, the last on stderr (a run's Dagster log may come before it)."""
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    own = [line for line in lines if line.startswith(f"skillswap-backup {command}:")]
    assert len(own) == 1 and own[0] == lines[-1], result.stderr[-3000:]
    return own[0]


def test_restore_with_the_wrong_key_fails_in_one_line_and_restores_nothing(encrypted, tmp_path):
    wrong = tmp_path / "wrong-key.txt"
    encryption.write_identity_file(wrong)
    with scratch_database("ssb_test_sec_wrongkey") as target:
        line = _one_line(_cli_restore(encrypted["root"], wrong, target, tmp_path))
        assert "cannot decrypt" in line and ".age" in line and "nothing was restored" in line
        assert _user_objects(target) == []


def test_restore_of_a_truncated_file_fails_in_one_line_and_restores_nothing(encrypted, tmp_path):
    root = _copy(encrypted, tmp_path)
    # The smallest table: without checking first, every other table would be loaded before it.
    part = root / KEY / "tables" / "legacy_accounts" / "part-00000.parquet.age"
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    with scratch_database("ssb_test_sec_trunc") as target:
        line = _one_line(_cli_restore(root, encrypted["identity"], target, tmp_path))
        assert "tables/legacy_accounts/part-00000.parquet.age" in line and "nothing was restored" in line
        assert "does not match its manifest" in line
        assert _user_objects(target) == []


def _truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _flip(data: bytes) -> bytes:
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0x01
    return bytes(flipped)


@pytest.mark.parametrize("damage", [_truncate, _flip], ids=["truncated", "flipped-byte"])
@pytest.mark.parametrize("manifest_updated", [False, True], ids=["manifest-as-written", "manifest-rewritten-to-match"])
def test_restore_of_a_damaged_file_restores_nothing(encrypted, tmp_path, damage, manifest_updated):
    root = _copy(encrypted, tmp_path)
    part = root / KEY / "tables" / "legacy_accounts" / "part-00000.parquet.age"
    part.write_bytes(damage(part.read_bytes()))
    if manifest_updated:
        # Someone who can write the bucket can rewrite the manifest too: age's own authentication
        # must still refuse the file.
        store = SnapshotStore(str(root), KEY, encryption_config=encryption.EncryptionConfig())
        described = store.describe(f"tables/legacy_accounts/{part.name}")
        manifest_path = root / KEY / "manifest.json"
        body = json.loads(manifest_path.read_text())
        for entry in body["files"]:
            if entry["path"] == described.path:
                entry["sha256"], entry["bytes"] = described.sha256, described.bytes
        manifest_path.write_text(json.dumps(body))
    with scratch_database("ssb_test_sec_damage") as target, environment(BACKUP_ROOT=str(root), BACKUP_AGE_IDENTITY=str(encrypted["identity"])):
        result = restore_run(encrypted["instance"], target, snapshot=KEY)
        assert not result.success
        (message,) = failure_messages(result)
        assert "tables/legacy_accounts/part-00000.parquet.age" in message and "nothing was restored" in message
        assert ("does not match its manifest" in message) != manifest_updated
        assert ("cannot decrypt" in message) == manifest_updated
        assert _user_objects(target) == []
        failed_steps = {e.step_key for e in result.all_events if e.is_step_failure}
        assert failed_steps == {"restore_plan"}


# ---- encryption that cannot be applied ----------------------------------------------------------


@pytest.mark.parametrize(
    "settings, needle",
    [
        ({"BACKUP_AGE_RECIPIENTS": "age1thisisnotavalidrecipientkey"}, "BACKUP_AGE_RECIPIENTS entry 1"),
        ({"BACKUP_AGE_RECIPIENTS": " , "}, "holds no age public key"),
        ({"BACKUP_AGE_PASSPHRASE": "x", "BACKUP_AGE_RECIPIENTS": "RECIPIENT"}, "not both"),
    ],
    ids=["invalid-recipient", "blank-recipients", "recipient-and-passphrase"],
)
def test_encryption_that_cannot_be_applied_fails_the_run_and_writes_no_plaintext(encrypted, tmp_path, settings, needle):
    settings = {k: v.replace("RECIPIENT", encrypted["recipient"]) for k, v in settings.items()}
    root = tmp_path / "backups"
    with environment(BACKUP_ROOT=str(root), **settings), dg.instance_for_test() as instance:
        result = backup_partition(KEY, instance, expect_success=False)
    assert not result.success
    failures = step_failures(result)
    assert failures and all(needle in f for f in failures), failures
    written = [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
    assert written == []


def test_cli_backup_with_an_invalid_recipient_is_one_line(encrypted, tmp_path):
    env = cli_env(DATABASE_URL=encrypted["url"], BACKUP_ROOT=str(tmp_path / "backups"),
                  BACKUP_CATALOG=str(encrypted["tmp"] / "catalog.json"), DAGSTER_HOME=str(tmp_path),
                  BACKUP_AGE_RECIPIENTS="age1thisisnotavalidrecipientkey")
    result = subprocess.run([CLI, "backup", "--partition", KEY], env=env, capture_output=True, text=True, timeout=300)
    line = _one_line(result, "backup")
    assert len(result.stderr.strip().splitlines()) == 1  # refused before any run started
    assert "BACKUP_AGE_RECIPIENTS" in line
    assert not (tmp_path / "backups").exists() or not any(p.is_file() for p in (tmp_path / "backups").rglob("*"))


# A name the source's own (NOT VALID) CHECK rejects: the snapshot's check fails and names the row.
PRIVATE_NAME = "Zed-Private-Person"
RULE_BREAKING_SQL = f"""
UPDATE users SET first_name = '{PRIVATE_NAME}' WHERE id = 1;
DO $$ BEGIN EXECUTE format(
    'ALTER TABLE users ADD CONSTRAINT users_first_name_known CHECK (first_name IN (%s)) NOT VALID',
    (SELECT string_agg(DISTINCT quote_literal(first_name), ', ') FROM users WHERE id <> 1));
END $$;
"""


def test_a_failed_check_of_an_encrypted_snapshot_keeps_the_offending_values_encrypted(tmp_path):
    identity = tmp_path / "backup-key.txt"
    recipient = encryption.write_identity_file(identity)
    with security_source("ssb_test_sec_redact", tmp_path) as url, dg.instance_for_test() as instance:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(RULE_BREAKING_SQL)
        discover(url, tmp_path / "catalog.json")
        with environment(BACKUP_AGE_RECIPIENTS=recipient, BACKUP_AGE_IDENTITY=str(identity)):
            run = backup_partition(KEY, instance)
        failed = [e for e in run.get_asset_check_evaluations() if not e.passed]
        assert [(e.asset_key.path[-1], e.check_name) for e in failed] == [("users", "check_constraints")]
        # The plaintext verdict still names the row, by its integer key only.
        assert failed[0].metadata["offending_keys"].value == [{"id": 1, "first_name": redact.WITHHELD}]
        log = "\n".join(str(e) for e in instance.all_logs(run.run_id))
    folder = tmp_path / "backups" / KEY
    assert files_containing(folder, [PRIVATE_NAME]) == {}
    assert PRIVATE_NAME not in log
    quality = json.loads((folder / "reports" / "quality.json").read_text())
    users = next(t for t in quality["tables"] if t["table"] == "public.users")
    assert users["families"]["check_constraints"]["sample"] == [{"id": 1, "first_name": redact.WITHHELD}]
    _age_decrypt(identity, folder / "reports" / "samples.json.age", tmp_path / "samples.json")
    samples = json.loads((tmp_path / "samples.json").read_text())["samples"]
    assert samples["public.users"]["check_constraints"] == [{"id": 1, "first_name": PRIVATE_NAME}]
