"""Shared set-up for the restore tests: sources backed up by the real backup job, restore runs
through the real Dagster `restore` job, and comparisons of databases as PostgreSQL prints them."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import dagster as dg
import psycopg
from psycopg import sql

from skillswap_backup.lib import dumps, pg
from skillswap_backup_tests.lifecycle_support import backup_partition, discover, environment
from skillswap_backup_tests.pgtools import database_name, scratch_database

TORTURE_SQL = Path(__file__).with_name("restore_torture.sql")
REPO = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "skillswap-backup")
SECRET = "pw-Never-Print-Me-5519"


def run_cli(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The installed CLI in a clean environment (only `env` for our settings)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "NEW_DATABASE_URL", "BACKUP_", "DAGSTER_"))}
    return subprocess.run([CLI, *args], env={**base, **env}, capture_output=True, text=True, timeout=600, cwd=cwd)


def one_line(stderr: str, *needles: str) -> str:
    """The single line a failed command printed on stderr, checked for `needles` and no secret."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert SECRET not in stderr
    return lines[0]

# Objects a restore must bring back, counted per kind in the schemas of the source.
OBJECTS_SQL = """
SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) || ' ' || convalidated
FROM pg_constraint WHERE connamespace::regnamespace::text = ANY(%(schemas)s) AND conrelid <> 0
UNION ALL SELECT 'index ' || indexrelid::regclass::text || ' ' || pg_get_indexdef(indexrelid) FROM pg_index
    WHERE indrelid::regclass::text NOT LIKE 'pg_%%' AND (SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = indrelid) = ANY(%(schemas)s)
UNION ALL SELECT 'trigger ' || tgrelid::regclass::text || ' ' || tgname FROM pg_trigger
    WHERE NOT tgisinternal AND (SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = tgrelid) = ANY(%(schemas)s)
UNION ALL SELECT 'comment ' || objoid::regclass::text || ' ' || objsubid || ' ' || description FROM pg_description
    WHERE classoid = 'pg_class'::regclass AND (SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = objoid) = ANY(%(schemas)s)
UNION ALL SELECT 'view ' || c.oid::regclass::text || ' ' || pg_get_viewdef(c.oid) FROM pg_class c
    WHERE relkind = 'v' AND relnamespace::regnamespace::text = ANY(%(schemas)s)
UNION ALL SELECT 'type ' || t.oid::regtype::text FROM pg_type t
    WHERE typtype IN ('e', 'd') AND typnamespace::regnamespace::text = ANY(%(schemas)s)
UNION ALL SELECT 'default ' || adrelid::regclass::text || ' ' || pg_get_expr(adbin, adrelid) FROM pg_attrdef
    WHERE (SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = adrelid) = ANY(%(schemas)s)
UNION ALL SELECT 'extension ' || extname FROM pg_extension WHERE extname <> 'plpgsql'
ORDER BY 1
"""


def schema_objects(url: str, schemas: list[str]) -> list[str]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute(OBJECTS_SQL, {"schemas": schemas}).fetchall()]


def tables_in(url: str, schemas: list[str]) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema = ANY(%s) AND table_type = 'BASE TABLE'",
            (schemas,),
        ).fetchall()
    return {r[0] for r in rows}


def rows_as_text(url: str, qualified: str) -> list[str]:
    schema, name = qualified.split(".", 1)
    with psycopg.connect(url) as conn:
        query = sql.SQL("SELECT zz_row::text FROM {} zz_row").format(sql.Identifier(schema, name))
        return sorted(r[0] for r in conn.execute(query).fetchall())


def sequence_states(url: str) -> dict[str, tuple[int, bool]]:
    with psycopg.connect(url) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT c.oid::regclass::text FROM pg_class c WHERE c.relkind = 'S' "
            "AND c.relnamespace::regnamespace::text NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()]
        return {
            name: tuple(conn.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(sql.SQL(name))).fetchone())
            for name in names
        }


@contextmanager
def sql_source(prefix: str, tmp: Path, script: str) -> Iterator[str]:
    """A scratch database made by `script`, discovered into `tmp/catalog.json`, with the env
    pointing at it (snapshots under `tmp/backups`)."""
    with scratch_database(prefix) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(script)
        discover(url, tmp / "catalog.json")
        with environment(DATABASE_URL=url, BACKUP_ROOT=str(tmp / "backups"), BACKUP_CATALOG=str(tmp / "catalog.json")):
            yield url


@contextmanager
def backed_up_source(prefix: str, tmp: Path, script: str, key: str) -> Iterator[tuple[str, dg.DagsterInstance]]:
    """`sql_source`, backed up once by the real backup job (checks included) as partition `key`."""
    with sql_source(prefix, tmp, script) as url, dg.instance_for_test() as instance:
        backup_partition(key, instance)
        yield url, instance


def torture_source(prefix: str, tmp: Path):
    """A scratch database holding the type-torture schema (see `sql_source`)."""
    return sql_source(prefix, tmp, TORTURE_SQL.read_text())


def backup_snapshot(key: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """Materialize every asset of the backup (tables, schema, full dump, manifest) for one
    partition, as the backup job does, without its data-quality checks (tested on their own)."""
    from skillswap_backup.definitions import build_definitions

    defs = build_definitions()
    assets = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]
    result = dg.materialize(assets, partition_key=key, instance=instance, resources=defs.resources, raise_on_error=False)
    if not result.success:
        raise AssertionError(f"backup of {key} failed: " + "; ".join(failure_messages(result)))
    return result


def create_schema_as_the_app_would(target_url: str, snapshot_folder: Path) -> None:
    """The app's migrations made the schema (here: pg_restore of the snapshot's schema dump)."""
    with pg.libpq_env(target_url) as env:
        subprocess.run(["pg_restore", "--no-owner", "--no-acl", "--exit-on-error", f"--dbname={database_name(target_url)}",
                        str(snapshot_folder / dumps.SCHEMA_DUMP)], env=env, check=True, capture_output=True)


def restore_run(instance: dg.DagsterInstance, target_url: str, **config) -> dg.ExecuteInProcessResult:
    """The real `restore` job, its target given through NEW_DATABASE_URL as in production."""
    from skillswap_backup.definitions import build_definitions

    with environment(NEW_DATABASE_URL=target_url):
        job = build_definitions().resolve_job_def("restore")
        return job.execute_in_process(
            run_config={"ops": {"restore_plan": {"config": config}}}, instance=instance, raise_on_error=False
        )


def failure_messages(result) -> list[str]:
    messages = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error.cause is not None:
                error = error.cause
            messages.append(error.message.strip())
    return messages


def report_of(result) -> dict:
    for event in result.all_events:
        if event.is_successful_output and event.step_key == "verify_restore":
            return event.step_output_data.metadata["report_json"].value
    raise AssertionError("no restore report: " + "; ".join(failure_messages(result)))
