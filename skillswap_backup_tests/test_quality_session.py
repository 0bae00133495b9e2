"""The validation session that runs beside a backup (lib/quality/worker.py): a table is
validated only once it and its foreign-key parents are written; finishing publishes the reports;
an unfinished session's process is ended with its run."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from skillswap_backup.lib.catalog import load_catalog
from skillswap_backup.lib.quality.worker import Session, _Validation
from skillswap_backup_tests.lifecycle_support import backup_partition, demo_source

KEY = "2026-11-22"


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quality_session")
    with demo_source("ssb_test_qsession", tmp), dg.instance_for_test() as instance:
        backup_partition(KEY, instance)
        yield str(tmp / "backups"), load_catalog(tmp / "catalog.json")


def _request(root: str, catalog) -> dict:
    return {"root": root, "partition_key": KEY, "catalog": json.loads(catalog.to_json()), "order": [t.qualified for t in catalog.tables]}


def test_a_table_waits_for_its_foreign_key_parents(snapshot):
    root, catalog = snapshot
    lines: list[str] = []
    validation = _Validation(_request(root, catalog), lines.append)
    validation.written("public.swap_ratings")  # -> swap_requests, users
    validation.written("public.users")
    assert list(validation.results) == ["public.users"]
    validation.written("public.skills")
    validation.written("public.swap_requests")  # -> users, skills: now swap_ratings is ready too
    assert sorted(validation.results) == ["public.skills", "public.swap_ratings", "public.swap_requests", "public.users"]
    ratings = validation.results["public.swap_ratings"]
    assert ratings.passed and ratings.rows == 8
    assert ratings.families["foreign_keys"].passed
    assert lines[-1] in ("public.swap_ratings: passed", "public.swap_requests: passed")


def test_finish_validates_what_is_left_and_publishes(snapshot):
    root, catalog = snapshot
    session = Session().open(root=root, partition_key=KEY, catalog=catalog, order=[t.qualified for t in catalog.tables])
    session.written("public.users")
    lines: list[str] = []
    outcome = session.finish(["public.users", "public.skills"], lines.append)
    assert [(r.table, r.passed, r.rows) for r in outcome.results] == [("public.users", True, 24), ("public.skills", True, 127)]
    assert lines == ["public.users: passed", "public.skills: passed"]
    assert outcome.published["data_docs"].endswith(f"{KEY}/reports/index.html")
    assert outcome.published["restorable"] is True


def test_closing_an_unfinished_session_ends_its_process(snapshot):
    root, catalog = snapshot
    session = Session().open(root=root, partition_key=KEY, catalog=catalog, order=[t.qualified for t in catalog.tables])
    session.written("public.skills")
    process = session._child
    assert process.poll() is None
    session.close()
    assert process.poll() is not None
