"""`skillswap-backup sql`: the snapshot's full dump as the plain SQL script of the user's plan
(`psql $NEW_DATABASE_URL < skillswap_backup.sql`), loaded with psql into new databases."""

from __future__ import annotations

import subprocess
from pathlib import Path

import bcrypt
import dagster as dg
import psycopg
import pytest

from skillswap_backup.cli.main import main
from skillswap_backup.lib.demo_db import DEMO_COUNTS, DEMO_USER_EMAIL, DEMO_USER_PASSWORD
from skillswap_backup.lib.encryption import write_identity_file
from skillswap_backup_tests.lifecycle_support import demo_source, environment
from skillswap_backup_tests.pgtools import database_name, scratch_database
from skillswap_backup_tests.restore_support import backup_snapshot, one_line, rows_as_text, run_cli

KEY = "2026-11-22"
ALL_TABLES = [f"public.{t}" for t in DEMO_COUNTS] + ["drizzle.__drizzle_migrations"]


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory):
    """The demo backed up twice: in the clear, and encrypted; (source url, plain env, encrypted env, identity)."""
    tmp = tmp_path_factory.mktemp("sql_script")
    identity = tmp / "age.key"
    recipient = write_identity_file(identity)
    with demo_source("ssb_test_sql_src", tmp) as url, dg.instance_for_test() as instance:
        backup_snapshot(KEY, instance)
        with environment(BACKUP_ROOT=str(tmp / "encrypted"), BACKUP_AGE_RECIPIENTS=recipient, BACKUP_AGE_IDENTITY=str(identity)):
            backup_snapshot(KEY, instance)
        base = {"BACKUP_CATALOG": str(tmp / "catalog.json"), "DAGSTER_HOME": str(tmp)}
        yield url, {**base, "BACKUP_ROOT": str(tmp / "backups")}, {**base, "BACKUP_ROOT": str(tmp / "encrypted")}, identity


def _psql(target: str, *, script: Path | None = None, text: str | None = None) -> subprocess.CompletedProcess:
    args = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres", "-d", database_name(target)]
    if script is not None:
        args += ["-f", str(script)]
    return subprocess.run(args, input=text, capture_output=True, text=True, timeout=300)


def _assert_same_database(source: str, target: str) -> None:
    for qualified in ALL_TABLES:
        assert rows_as_text(target, qualified) == rows_as_text(source, qualified), qualified
    with psycopg.connect(target) as conn:
        hashed = conn.execute("SELECT password FROM users WHERE email = %s", (DEMO_USER_EMAIL,)).fetchone()[0]
        assert bcrypt.checkpw(DEMO_USER_PASSWORD.encode(), hashed.encode())
        unvalidated = conn.execute("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated").fetchone()[0]
        foreign_keys = conn.execute("SELECT count(*) FROM pg_constraint WHERE contype = 'f'").fetchone()[0]
        assert (foreign_keys, unvalidated) == (17, 0)
        # Sequences were set: the app's next sign-up gets the next id.
        new_id = conn.execute(
            "INSERT INTO users (email, password, first_name, last_name) VALUES ('new@x.example', 'x', 'N', 'U') RETURNING id"
        ).fetchone()[0]
        assert new_id == DEMO_COUNTS["users"] + 1


def test_the_script_loads_with_psql_into_a_new_database_that_then_works(snapshots, tmp_path):
    source, env, _, _ = snapshots
    script = tmp_path / "skillswap_backup.sql"
    result = run_cli("sql", "-o", str(script), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith(f"wrote {script} ({script.stat().st_size} bytes): snapshot {KEY}'s full dump as SQL")
    assert [p.name for p in tmp_path.iterdir()] == ["skillswap_backup.sql"]  # no partial file left beside it
    text = script.read_text()
    # Portable to a new provider: no owners, grants or extension comments; one transaction.
    assert "OWNER TO" not in text and "GRANT " not in text and "COMMENT ON EXTENSION" not in text
    assert "\nBEGIN;\n" in text and "\nCOMMIT;\n" in text
    with scratch_database("ssb_test_sql_file") as target:
        loaded = _psql(target, script=script)
        assert loaded.returncode == 0 and loaded.stderr == "", loaded.stderr
        _assert_same_database(source, target)


def test_the_script_pipes_into_psql(snapshots):
    source, env, _, _ = snapshots
    result = run_cli("sql", "--snapshot", KEY, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("--\n-- PostgreSQL database dump\n")
    with scratch_database("ssb_test_sql_pipe") as target:
        loaded = _psql(target, text=result.stdout)
        assert loaded.returncode == 0, loaded.stderr
        assert rows_as_text(target, "public.swap_ratings") == rows_as_text(source, "public.swap_ratings")


def test_a_script_that_fails_half_way_leaves_the_target_empty(snapshots, tmp_path):
    """One transaction: the target already has `skills`, so CREATE TABLE fails and nothing stays."""
    _, env, _, _ = snapshots
    script = tmp_path / "s.sql"
    assert run_cli("sql", "-o", str(script), env=env).returncode == 0
    with scratch_database("ssb_test_sql_half") as target:
        with psycopg.connect(target) as conn:
            conn.execute("CREATE TABLE skills (id int)")
        loaded = _psql(target, script=script)
        assert loaded.returncode != 0 and 'relation "skills" already exists' in loaded.stderr
        with psycopg.connect(target) as conn:
            tables = conn.execute(
                "SELECT string_agg(table_schema || '.' || table_name, ',') FROM information_schema.tables "
                "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
            ).fetchone()[0]
        assert tables == "public.skills"


def test_an_encrypted_snapshot_gives_its_script_with_the_identity_and_says_it_is_in_the_clear(snapshots, tmp_path):
    source, _, env, identity = snapshots
    script = tmp_path / "plain.sql"
    result = run_cli("sql", "-o", str(script), env={**env, "BACKUP_AGE_IDENTITY": str(identity)})
    assert result.returncode == 0, result.stderr
    assert "the snapshot is encrypted, the script is not" in result.stderr
    with scratch_database("ssb_test_sql_age") as target:
        assert _psql(target, script=script).returncode == 0
        assert rows_as_text(target, "public.users") == rows_as_text(source, "public.users")
    refused = run_cli("sql", "-o", str(tmp_path / "nokey.sql"), env=env)
    assert refused.returncode == 1
    assert "BACKUP_AGE_IDENTITY" in one_line(refused.stderr, "skillswap-backup sql: ")
    assert not (tmp_path / "nokey.sql").exists()


def test_bad_requests_are_one_line_and_write_nothing(snapshots, tmp_path, capsys):
    _, env, _, _ = snapshots
    root = Path(env["BACKUP_ROOT"])
    with environment(**env):
        assert main(["sql", "-o", str(tmp_path / "x.sql"), "2020-01-05"]) == 1
        line = one_line(capsys.readouterr().err, "'2020-01-05' is not a complete snapshot", KEY)
        assert line.startswith("skillswap-backup sql: ")
        assert main(["sql", "-o", str(tmp_path / "missing-folder" / "x.sql")]) == 1
        one_line(capsys.readouterr().err, f"cannot write {tmp_path / 'missing-folder' / 'x.sql'}")
        dump = root / KEY / "dump" / "full.dump"
        original = dump.read_bytes()
        try:
            damaged = bytearray(original)
            damaged[len(damaged) // 2] ^= 0xFF
            dump.write_bytes(bytes(damaged))
            assert main(["sql", "-o", str(tmp_path / "x.sql")]) == 1
            one_line(capsys.readouterr().err, "dump/full.dump", "does not match its manifest", "no script was written")
        finally:
            dump.write_bytes(original)
    assert not any(tmp_path.glob("*.sql")) and not any(tmp_path.glob(".*.partial"))
