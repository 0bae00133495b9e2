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
    return [
        f"{event.step_key}: {event.step_failure_data.error.message.strip().splitlines()[-1] if event.step_failure_data.error.message.strip() else ''}"
        for event in result.all_events
        if event.is_step_failure
    ]


def copy_snapshot(src_root: Path, key: str, dst_root: Path, new_key: str | None = None) -> Path:
    target = dst_root / (new_key or key)
    shutil.copytree(src_root / key, target)
    return target
