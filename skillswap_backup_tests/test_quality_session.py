"""The validation session that runs beside a backup (lib/quality/worker.py): a table is
validated only once it and its foreign-key parents are written; finishing publishes the reports;
an unfinished session's process is ended with its run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from skillswap_backup.lib.catalog import load_catalog
from skillswap_backup.lib.quality import worker
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
    published = outcome.published()  # the results come first, the reports once built
    assert lines == ["public.users: passed\npublic.skills: passed"]
    assert published["data_docs"].endswith(f"{KEY}/reports/index.html")
    assert published["restorable"] is True
    assert (Path(root) / KEY / "reports" / "index.html").is_file()
    assert session._child.poll() == 0


def test_closing_an_unfinished_session_ends_its_process(snapshot):
    root, catalog = snapshot
    session = Session().open(root=root, partition_key=KEY, catalog=catalog, order=[t.qualified for t in catalog.tables])
    session.written("public.skills")
    process = session._child
    assert process.poll() is None
    session.close()
    assert process.poll() is not None


def test_a_run_takes_over_the_session_started_early(snapshot):
    """The CLI starts the validation process before it imports Dagster; the run uses that one."""
    root, catalog = snapshot
    worker.start_early()
    early = worker._early
    with dg.instance_for_test() as instance:
        result = backup_partition("2026-11-15", instance)
    assert worker.take_early() is None
    # It answered the run's check step (exit 0), so the run validated through it.
    assert early._child.wait(timeout=5) == 0
    evaluations = [e.asset_check_evaluation_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert evaluations and all(e.passed for e in evaluations)


def test_the_worker_validates_without_scipy_stats_altair_or_sqlalchemy():
    """lean_import: GX imports, and our suites run, with those parts never executed."""
    probe = (
        "import sys\n"
        "from skillswap_backup.lib.quality import lean_import\n"
        "lean_import.install()\n"
        "from skillswap_backup.lib.quality.suites import warm_up\n"
        "warm_up()\n"
        "print(sorted(m for m in ('scipy.stats._stats_py', 'altair.vegalite', 'sqlalchemy.orm') if m in sys.modules))\n"
        "print('great_expectations' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[:2] == ["[]", "True"]


def test_small_tables_are_validated_in_the_worker_big_ones_in_a_child(snapshot):
    root, catalog = snapshot
    validation = _Validation(_request(root, catalog), lambda line: None)
    assert validation._small(catalog.table("public.skills"))  # 127 rows
    worker_rows = worker.IN_PROCESS_ROWS
    try:
        worker.IN_PROCESS_ROWS = 127
        assert not validation._small(catalog.table("public.skills"))
    finally:
        worker.IN_PROCESS_ROWS = worker_rows
    # Both ways give the same verdict.
    here = worker._validate_here(validation.validator, catalog.table("public.swap_ratings"), validation.reader)
    forked = worker._validate_forked(validation.validator, catalog.table("public.swap_ratings"), validation.reader)
    def verdict(result) -> dict:  # the GX result itself also carries its run's time and ids
        body = result.to_dict()
        outcomes = [(r["expectation_config"]["type"], r["success"]) for r in body.pop("gx_result")["results"]]
        return {**body, "outcomes": outcomes}

    assert verdict(here) == verdict(forked)
    assert here.passed and here.rows == 8


def test_a_small_table_whose_validation_fails_is_reported_failed_with_the_reason(snapshot):
    from skillswap_backup.lib.quality.suites import QualityValidator

    _, catalog = snapshot

    class Exhausted(QualityValidator):
        def validate_table(self, table, reader):
            raise MemoryError("cannot allocate")

    result = worker._validate_here(Exhausted(catalog), catalog.table("public.users"), reader=None)
    assert result.table == "public.users" and not result.passed and result.error == "MemoryError: cannot allocate"
