"""Snapshots on an S3 object store (SeaweedFS, a real S3 server on loopback): the CLI backs up,
lists, verifies and restores through `BACKUP_ROOT=s3://…`, encrypted objects hold no plaintext,
and a store that cannot be used (refused or missing credentials, unreachable, read-only) is
answered with one clear line that never shows the secret key."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from skillswap_backup_tests.lifecycle_support import cli_env, cli_instance, demo_source
from skillswap_backup_tests.pgtools import scratch_database
from skillswap_backup_tests.restore_support import one_line, rows_as_text, run_cli
from skillswap_backup_tests.s3_support import Credentials, seaweedfs

KEY = "2026-11-29"
TABLES = [
    "drizzle.__drizzle_migrations", "public.conversations", "public.messages", "public.notifications", "public.skills",
    "public.swap_ratings", "public.swap_requests", "public.user_skills_offered", "public.user_skills_wanted", "public.users",
]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture(scope="module")
def encrypted_on_s3(s3, tmp_path_factory):
    """The demo database backed up by the CLI, age-encrypted, into a fresh bucket."""
    from skillswap_backup.lib import encryption

    tmp = tmp_path_factory.mktemp("s3_backup")
    bucket = f"ssb-test-{uuid.uuid4().hex[:8]}"
    fs = s3.filesystem()
    s3.make_bucket(fs, bucket)
    identity = tmp / "backup-key.txt"
    recipient = encryption.write_identity_file(identity)
    with demo_source("ssb_test_s3", tmp) as url, cli_instance(tmp) as instance_env:
        env = cli_env(
            DATABASE_URL=url, BACKUP_ROOT=f"s3://{bucket}/snapshots", BACKUP_CATALOG=str(tmp / "catalog.json"),
            BACKUP_AGE_RECIPIENTS=recipient, BACKUP_AGE_IDENTITY=str(identity), **instance_env, **s3.env(),
        )
        backup = run_cli("backup", "--partition", KEY, env=env)
        assert backup.returncode == 0, backup.stderr[-3000:]
        yield url, env, fs, bucket
    fs.rm(bucket, recursive=True)


def test_backup_lands_in_the_bucket_encrypted_and_lists(encrypted_on_s3):
    url, env, fs, bucket = encrypted_on_s3
    objects = [path.split(f"{bucket}/snapshots/{KEY}/", 1)[1] for path in fs.find(f"{bucket}/snapshots/{KEY}")]
    assert "manifest.json" in objects
    assert "tables/users/part-00000.parquet.age" in objects and "json/users.json.age" in objects
    assert "dump/full.dump.age" in objects
    assert not [o for o in objects if o.startswith(".tmp-") or "/.tmp-" in o]
    # No object holds a row's values in the clear: an email, a bcrypt hash, a skill's name.
    with psycopg.connect(url) as conn:
        email, password_hash = conn.execute("SELECT email, password FROM users ORDER BY id LIMIT 1").fetchone()
        skill = conn.execute("SELECT name FROM skills ORDER BY id LIMIT 1").fetchone()[0]
    needles = [value.encode() for value in (email, password_hash, skill)]
    stored = {o: fs.cat(f"{bucket}/snapshots/{KEY}/{o}") for o in objects}
    leaking = [o for o, data in stored.items() if any(needle in data for needle in needles)]
    assert leaking == []
    listed = run_cli("list", env=env)
    assert listed.returncode == 0, listed.stderr
    (line,) = [line for line in listed.stdout.splitlines() if line.startswith(KEY)]
    assert line.split()[2:4] == ["10", "277"]


def test_verify_and_restore_from_the_bucket_give_back_every_row(encrypted_on_s3):
    url, env, _, _ = encrypted_on_s3
    verified = run_cli("verify", KEY, env=env)
    assert verified.returncode == 0, verified.stderr[-3000:]
    assert "277 rows" in verified.stdout
    with scratch_database("ssb_test_s3_target") as target:
        restored = run_cli("restore", "--snapshot", KEY, "--target-url", target, env=env)
        assert restored.returncode == 0, restored.stderr[-3000:]
        assert "verified: every table matches the snapshot" in restored.stdout
        for table in TABLES:
            assert rows_as_text(target, table) == rows_as_text(url, table), table


def test_restore_with_read_only_credentials(encrypted_on_s3, s3, tmp_path):
    """Whoever restores may only hold read access to the bucket: the restore still works, and
    its report, which it may not add to the snapshot, is kept in a local folder instead."""
    url, env, _, _ = encrypted_on_s3
    with scratch_database("ssb_test_s3_ro") as target:
        restored = run_cli("restore", "--snapshot", KEY, "--target-url", target, env={**env, **s3.reader.env()}, cwd=tmp_path)
        assert restored.returncode == 0, restored.stderr[-3000:]
        assert rows_as_text(target, "public.users") == rows_as_text(url, "public.users")
    (report,) = (tmp_path / ".skillswap" / "reports" / KEY).glob("restore-*/index.html")
    assert f"restore quality report: {report}" in restored.stdout


def _one_line(result, *needles: str, secrets: tuple[str, ...]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    line = one_line(result.stderr, *needles)
    for secret in secrets:
        assert secret not in result.stdout + result.stderr
    return line


@pytest.mark.parametrize("command", [["list"], ["backup", "--partition", KEY], ["restore", "--snapshot", KEY]])
def test_refused_credentials_are_one_line_without_the_secret(encrypted_on_s3, s3, command):
    _, env, _, _ = encrypted_on_s3
    wrong = Credentials(s3.admin.key, "not-the-Secret-3390")
    with scratch_database("ssb_test_s3_refused") as target:
        result = run_cli(*command, env={**env, **wrong.env(), "NEW_DATABASE_URL": target})
    _one_line(result, "refused access", "AWS_SECRET_ACCESS_KEY", secrets=(wrong.secret, s3.admin.secret))


def test_missing_credentials_and_an_unreachable_store_are_one_line(encrypted_on_s3, s3):
    _, env, _, _ = encrypted_on_s3
    anonymous = {k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    # No shared credentials file or instance metadata may stand in for the missing variables.
    anonymous.update(AWS_SHARED_CREDENTIALS_FILE="/nonexistent", AWS_CONFIG_FILE="/nonexistent", AWS_EC2_METADATA_DISABLED="true")
    _one_line(run_cli("list", env=anonymous), "no object-store credentials", "AWS_ACCESS_KEY_ID", secrets=(s3.admin.secret,))
    # A port nothing listens on; one attempt, so the test does not sit through the SDK's retries.
    closed = {**env, "AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_MAX_ATTEMPTS": "1"}
    for command in (["list"], ["backup", "--partition", KEY]):
        _one_line(run_cli(*command, env=closed), "cannot reach the object store", "AWS_ENDPOINT_URL", secrets=(s3.admin.secret,))


def test_backup_with_read_only_credentials_is_refused_before_reading(encrypted_on_s3, s3):
    _, env, fs, bucket = encrypted_on_s3
    before = fs.find(f"{bucket}/snapshots")
    result = run_cli("backup", "--partition", "2026-11-22", env={**env, **s3.reader.env()})
    _one_line(result, "refused access", f"s3://{bucket}/snapshots", secrets=(s3.reader.secret, s3.admin.secret))
    fs.invalidate_cache()
    assert fs.find(f"{bucket}/snapshots") == before
