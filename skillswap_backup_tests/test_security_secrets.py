"""Secrets never leak, on a real CLI backup and restore: the source is read by a SELECT-only role
with a password (least privilege), the target written by another role with a password, and the
restore rotates secrets. Then every place a password could end up is searched: CLI output, the
snapshot (manifest, meta, extras, reports, data), Dagster's storage (run config, tags, event log,
job snapshots: the whole instance database), files under DAGSTER_HOME, failure messages, and the
command lines and environments of the pg_dump / pg_restore processes while they ran."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
from pathlib import Path

import bcrypt
import dagster as dg
import psycopg
import pytest
from dagster._serdes import serialize_value
from psycopg import sql

from skillswap_backup.lib.demo_db import DEMO_ADMIN_EMAIL, DEMO_USER_EMAIL
from skillswap_backup_tests.lifecycle_support import CLI, cli_env, cli_instance, environment
from skillswap_backup_tests.pgtools import admin_url, database_name, scratch_database
from skillswap_backup_tests.security_support import (
    files_containing,
    grant_read_only,
    login_role,
    security_source,
    url_as,
)

KEY, FAILING_KEY = "2026-05-03", "2026-05-10"
TOOLS = ("pg_dump", "pg_restore", "psql")


class ProcessWatch(threading.Thread):
    """Reads every process's command line, and the environment of PostgreSQL client tools, in a
    loop; records any that holds one of `needles`."""

    def __init__(self, needles: list[str]) -> None:
        super().__init__(name="process-watch", daemon=True)
        self.needles = [n.encode() for n in needles]
        self.stop_event = threading.Event()
        self.leaks: list[str] = []
        self.tools: list[tuple[str, list[str]]] = []
        self.passfile_modes: set[int] = set()

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.scan()

    def _read(self, pid: str, name: str) -> bytes | None:
        try:
            with open(f"/proc/{pid}/{name}", "rb") as handle:
                return handle.read()
        except OSError:
            return None

    def scan(self) -> None:
        for pid in (p for p in os.listdir("/proc") if p.isdigit()):
            cmdline = self._read(pid, "cmdline")
            if not cmdline:
                continue
            if any(n in cmdline for n in self.needles):
                self.leaks.append(f"command line of {pid}: {cmdline[:80]!r}")
            comm = (self._read(pid, "comm") or b"").decode().strip()
            if comm not in TOOLS:
                continue
            args = cmdline.decode(errors="replace").split("\0")
            if (comm, args) not in self.tools:
                self.tools.append((comm, args))
            if any("postgres://" in a or "postgresql://" in a or "password=" in a for a in args):
                self.leaks.append(f"{comm} got a connection URL on its command line: {args}")
            environ = self._read(pid, "environ") or b""
            holding = [e.split(b"=", 1)[0].decode() for e in environ.split(b"\0") if any(n in e for n in self.needles)]
            if holding:
                self.leaks.append(f"environment of {comm} ({' '.join(args[1:3])}): {', '.join(holding)}")
            for entry in environ.split(b"\0"):
                if entry.startswith(b"PGPASSFILE="):
                    try:
                        self.passfile_modes.add(stat.S_IMODE(os.stat(entry.split(b"=", 1)[1]).st_mode))
                    except OSError:
                        pass

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=60)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sec_secrets")
    with login_role("reader") as (reader, reader_pw), login_role("owner") as (owner, owner_pw):
        with security_source("ssb_test_sec_src", tmp) as url, scratch_database("ssb_test_sec_tgt") as target:
            grant_read_only(url, reader)
            with psycopg.connect(admin_url(), autocommit=True) as conn:
                conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(database_name(target)), sql.Identifier(owner)))
            with psycopg.connect(target, autocommit=True) as conn:
                conn.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(owner)))
            source_url, target_url = url_as(url, reader, reader_pw), url_as(target, owner, owner_pw)
            with cli_instance(tmp) as dagster_env:
                env = cli_env(DATABASE_URL=source_url, NEW_DATABASE_URL=target_url, BACKUP_ROOT=str(tmp / "backups"),
                              BACKUP_CATALOG=str(tmp / "catalog.json"), **dagster_env)
                secrets_file = tmp / "rotated" / "admin-passwords.txt"
                watch = ProcessWatch([reader_pw, owner_pw])
                watch.start()
                try:
                    outputs = {
                        "discover": _cli(env, "discover"),
                        "backup": _cli(env, "backup", "--partition", KEY),
                        "restore": _cli(env, "restore", "--snapshot", KEY, "--rotate-secrets", "--secrets-file", str(secrets_file)),
                    }
                    # A failing run: the reader loses SELECT on one table.
                    with psycopg.connect(url, autocommit=True) as conn:
                        conn.execute(sql.SQL("REVOKE SELECT ON skills FROM {}").format(sql.Identifier(reader)))
                    outputs["failing backup"] = _cli(env, "backup", "--partition", FAILING_KEY)
                finally:
                    watch.stop()
                instance_dump = subprocess.run(
                    ["pg_dump", "--no-owner", "--dbname", dagster_env["DAGSTER_PG_URL"].replace("+psycopg2", "")],
                    capture_output=True, text=True, check=True,
                ).stdout
                with environment(**dagster_env), dg.DagsterInstance.get() as instance:
                    runs = instance.get_runs()
                    events = {run.run_id: [serialize_value(e) for e in instance.all_logs(run.run_id)] for run in runs}
                    run_records = [serialize_value(run) for run in runs]
                yield {
                    "tmp": tmp, "url": url, "target": target, "reader": reader, "owner": owner,
                    "passwords": [reader_pw, owner_pw], "outputs": outputs, "watch": watch, "secrets_file": secrets_file,
                    "instance_dump": instance_dump, "events": events, "runs": run_records,
                }


def test_select_only_role_backs_up_everything(story):
    out = story["outputs"]
    assert out["discover"].returncode == 0, out["discover"].stderr[-2000:]
    assert out["backup"].returncode == 0, out["backup"].stderr[-3000:]
    with psycopg.connect(story["url"]) as conn:
        rolsuper, = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (story["reader"],)).fetchone()
        can_insert, = conn.execute("SELECT has_table_privilege(%s, 'users', 'INSERT')", (story["reader"],)).fetchone()
        counts = {t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
                  for t in ("users", "session", "legacy_accounts")}
    assert rolsuper is False and can_insert is False
    manifest = json.loads((story["tmp"] / "backups" / KEY / "manifest.json").read_text())
    paths = {f["path"] for f in manifest["files"]}
    assert {"schema/schema.dump", "dump/full.dump", "tables/users/part-00000.parquet"} <= paths
    assert len(manifest["tables"]) == 13
    assert {t: manifest["tables"][f"public.{t}"]["rows"] for t in counts} == counts
    assert "security finding: public.legacy_accounts.password" in out["backup"].stdout


def test_restore_as_a_password_role_is_verified_and_rotates_secrets(story):
    restore = story["outputs"]["restore"]
    assert restore.returncode == 0, restore.stderr[-3000:]
    path = story["secrets_file"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"new admin passwords are in {path}" in restore.stdout
    issued = {account: password for _, account, password in
              (line.split("\t") for line in path.read_text().splitlines() if line and not line.startswith("#"))}
    assert list(issued) == [DEMO_ADMIN_EMAIL]
    with psycopg.connect(story["target"]) as conn:
        stored = dict(conn.execute("SELECT email, password FROM users").fetchall())
        sessions = conn.execute("SELECT count(*) FROM session").fetchone()[0]
    with psycopg.connect(story["url"]) as conn:
        source = dict(conn.execute("SELECT email, password FROM users").fetchall())
        source_sessions = conn.execute("SELECT count(*) FROM session").fetchone()[0]
    assert bcrypt.checkpw(issued[DEMO_ADMIN_EMAIL].encode(), stored[DEMO_ADMIN_EMAIL].encode())
    assert stored[DEMO_ADMIN_EMAIL] != source[DEMO_ADMIN_EMAIL]
    assert {e: h for e, h in stored.items() if e != DEMO_ADMIN_EMAIL} == {e: h for e, h in source.items() if e != DEMO_ADMIN_EMAIL}
    assert stored[DEMO_USER_EMAIL] == source[DEMO_USER_EMAIL]
    assert sessions == 0 and source_sessions == 3
    assert "SESSION_SECRET" in restore.stdout and "public.legacy_accounts.api_key" in restore.stdout
    assert "emptied public.session (3 rows)" in restore.stdout


def test_the_failing_backup_is_one_line_naming_the_table(story):
    failing = story["outputs"]["failing backup"]
    assert failing.returncode == 1
    last = failing.stderr.strip().splitlines()[-1]
    assert last.startswith("skillswap-backup backup:") and "skills" in last and "permission denied" in last
    assert not (story["tmp"] / "backups" / FAILING_KEY / "manifest.json").exists()  # no partial snapshot listed


def test_no_password_in_cli_output_snapshot_or_dagster_home(story):
    secrets = story["passwords"] + [line.split("\t")[2] for line in story["secrets_file"].read_text().splitlines()
                                    if line and not line.startswith("#")]
    for name, result in story["outputs"].items():
        for secret in secrets:
            assert secret not in result.stdout + result.stderr, name
    found = files_containing(story["tmp"], secrets)
    assert set(found) == {str(story["secrets_file"])}  # the one place the new admin passwords belong
    assert (story["tmp"] / "backups" / KEY / "reports").is_dir() and (story["tmp"] / "dagster_home").is_dir()


def test_no_password_in_dagster_runs_config_or_event_log(story):
    secrets = story["passwords"]
    assert len(story["runs"]) == 3  # backup, restore, failing backup (discover runs no job)
    assert story["events"] and all(story["events"].values())
    everything = "\n".join([story["instance_dump"], *story["runs"], *(e for es in story["events"].values() for e in es)])
    assert "restore_plan" in everything and "STEP_FAILURE" in everything and "rotate_secrets" in everything
    for secret in secrets:
        assert secret not in everything
    # The URLs are in the environment of the runs, never in their config: resources read EnvVars.
    assert "DATABASE_URL" in story["instance_dump"] and story["reader"] not in "\n".join(story["runs"])


def test_pg_tools_never_get_a_url_or_password_on_argv_or_in_their_environment(story):
    watch = story["watch"]
    assert watch.leaks == []
    seen = {comm for comm, _ in watch.tools}
    assert {"pg_dump", "pg_restore"} <= seen, watch.tools
    assert any("--snapshot" in " ".join(args) for comm, args in watch.tools if comm == "pg_dump")
    assert watch.passfile_modes <= {0o600} and watch.passfile_modes, "a passfile was never seen"
    leftovers = [p for p in Path(os.environ.get("TMPDIR", "/tmp")).glob("skillswap-pass-*")]
    assert not [p for p in leftovers if any(pw.encode() in f.read_bytes() for f in p.rglob("*") if f.is_file() for pw in story["passwords"])]
