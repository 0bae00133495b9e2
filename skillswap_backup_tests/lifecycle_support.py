"""Shared set-up for the lifecycle tests: a demo source, its catalog, and real backup runs."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import dagster as dg

from skillswap_backup.lib.catalog import save_catalog
from skillswap_backup.lib.demo_db import create_demo_database
from skillswap_backup.lib.discover import load_tier_policy, reflect
from skillswap_backup.lib import pg, settings
from skillswap_backup_tests.pgtools import admin_url, database_name, scratch_database

ENV_KEYS = ("DATABASE_URL", "BACKUP_ROOT", "BACKUP_CATALOG", "SOURCE_EXPIRES_ON", "EXPIRY_WARN_DAYS", "BACKUP_KEEP",
            "NEW_DATABASE_URL", "BACKUP_CRON", "BACKUP_TIMEZONE", "VERIFY_CRON", "BACKUP_FRESHNESS_GRACE_HOURS")


@contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Set (or, with None, unset) environment variables for the block, then restore them."""
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def discover(url: str, catalog_path: Path) -> None:
    with pg.connect(url) as conn:
        catalog = reflect(conn, tier_policy=load_tier_policy(settings.tier_policy_path()), include=[], exclude=[])
    save_catalog(catalog, catalog_path)


@contextmanager
def demo_source(prefix: str, tmp: Path, *, scale: int = 1) -> Iterator[str]:
    """A scratch demo database, discovered into `tmp/catalog.json`, with the env pointing at it."""
    with scratch_database(prefix) as url:
        create_demo_database(admin_url(), database_name(url), scale=scale)
        discover(url, tmp / "catalog.json")
        with environment(DATABASE_URL=url, BACKUP_ROOT=str(tmp / "backups"), BACKUP_CATALOG=str(tmp / "catalog.json")):
            yield url


def backup_partition(key: str, instance: dg.DagsterInstance, *, expect_success: bool = True) -> dg.ExecuteInProcessResult:
    """Run the real `backup` job for one partition, as the schedule or the UI would."""
    from skillswap_backup.definitions import build_definitions

    job = build_definitions().resolve_job_def("backup")
    result = job.execute_in_process(partition_key=key, instance=instance, raise_on_error=False)
    if expect_success and not result.success:
        raise AssertionError(f"backup of {key} failed: " + "; ".join(step_failures(result)))
    return result


def step_failures(result) -> list[str]:
    """`step: message` per failed step (a dg.Failure's description, else the error's last line)."""
    found = []
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            message = data.user_failure_data.description
        else:
            error = data.error
            while error is not None and error.cause is not None:
                error = error.cause
            lines = error.message.strip().splitlines() if error else []
            message = lines[-1] if lines else ""
        found.append(f"{event.step_key}: {message}")
    return found


def copy_snapshot(src_root: Path, key: str, dst_root: Path, new_key: str | None = None) -> Path:
    target = dst_root / (new_key or key)
    shutil.copytree(src_root / key, target)
    return target


REPO = Path(__file__).resolve().parents[1]
CLI = str(Path(__import__("sys").executable).parent / "skillswap-backup")


@contextmanager
def cli_instance(tmp: Path) -> Iterator[dict[str, str]]:
    """Environment for CLI subprocesses: the project's dagster.yaml in a temporary DAGSTER_HOME,
    its storage in a scratch database (dropped after)."""
    home = tmp / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    with scratch_database("ssb_test_lc_dagster") as url:
        yield {"DAGSTER_HOME": str(home), "DAGSTER_PG_URL": url.replace("postgresql://", "postgresql+psycopg2://")}


def cli_env(**values: str) -> dict[str, str]:
    """The current environment minus the project's settings, plus `values`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "BACKUP_", "DAGSTER_", "SOURCE_", "NEW_DATABASE"))}
    return {**base, **values}
