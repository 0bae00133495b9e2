"""The project's quality checks inside real backup runs of the demo database.

The `backup` job materializes every table and runs the checks for the same partition; their
results land in the snapshot's `reports/` (quality.json and Data Docs). Tampering with a stored
Parquet part and re-running only the checks shows the failure, its offending key, and the
snapshot marked not restorable.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skillswap_backup.cli.runs import failures
from skillswap_backup.lib.catalog import load_catalog
from skillswap_backup.lib.quality import FAMILIES, results_from_json, text_summary
from skillswap_backup.lib.storage import SnapshotStore
from skillswap_backup_tests.lifecycle_support import backup_partition, demo_source

KEY = "2026-11-22"


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quality_snapshot")
    with demo_source("ssb_test_q", tmp), dg.instance_for_test() as instance:
        result = backup_partition(KEY, instance)
        yield tmp, load_catalog(tmp / "catalog.json"), instance, result


def _quality(tmp: Path) -> dict:
    return json.loads((tmp / "backups" / KEY / "reports" / "quality.json").read_text())


def test_backup_runs_every_check_and_all_pass(backed_up):
    tmp, catalog, _, result = backed_up
    evaluations = [e for e in result.get_asset_check_evaluations() if e.check_name in FAMILIES]
    checked = {tuple(e.asset_key.path[1:]) for e in evaluations}
    assert checked == {tuple(t.asset_path[1:]) for t in catalog.tables}
    assert {e.check_name for e in evaluations} == {"row_count", "primary_key", "not_null", "check_constraints", "foreign_keys"}
    assert [f"{e.asset_key.to_user_string()}:{e.check_name}" for e in evaluations if not e.passed] == []
    assert {e.partition for e in evaluations} == {KEY}
    fk = next(e for e in evaluations if e.asset_key.path[-1] == "swap_ratings" and e.check_name == "foreign_keys")
    assert fk.metadata["data_docs"].value.endswith(f"{KEY}/reports/index.html")
    assert fk.metadata["unexpected_count"].value == 0

    body = _quality(tmp)
    assert body["restorable"] is True and body["failed"] == {}
    results = results_from_json(json.dumps(body["tables"]))
    rows = {r.table: r.rows for r in results}
    assert rows["public.skills"] == 127 and rows["public.users"] == 24 and rows["public.swap_ratings"] == 8
    assert text_summary(results).startswith(f"Data quality: {len(catalog.tables)} tables")

    index = (tmp / "backups" / KEY / "reports" / "index.html").read_text()
    for table in catalog.tables:
        assert table.qualified in index


def test_tampered_snapshot_fails_its_checks_and_is_not_restorable(backed_up):
    tmp, catalog, instance, _ = backed_up
    users = catalog.table("users")
    store = SnapshotStore(str(tmp / "backups"), KEY)
    (part,) = store.table_parts(users)
    path = tmp / "backups" / KEY / part
    data = pq.read_table(path)
    duplicate = data.slice(0, 1)  # the first user, stored twice
    pq.write_table(pa.concat_tables([data, duplicate]), path)

    from skillswap_backup.definitions import build_definitions

    defs = build_definitions()
    wanted = {dg.AssetCheckKey(dg.AssetKey(t.asset_path), "primary_key") for t in catalog.tables if t.primary_key}
    wanted |= {dg.AssetCheckKey(dg.AssetKey(users.asset_path), "row_count")}
    job = defs.resolve_job_def("backup").get_subset(asset_selection=set(), asset_check_selection=wanted)
    result = job.execute_in_process(partition_key=KEY, instance=instance, raise_on_error=False)
    # ERROR severity (not Dagster-blocking, so a failed snapshot still gets its manifest): the CLI
    # turns these evaluations into a non-zero exit naming them.
    assert sorted(failures(result)) == [
        "check primary_key on skillswap/users failed",
        "check row_count on skillswap/users failed",
    ]

    failed = {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations() if not e.passed}
    assert set(failed) == {("users", "primary_key"), ("users", "row_count")}
    first_id = duplicate.column("id")[0].as_py()
    # The whole row was duplicated, so the unique email repeats too: both keys are named.
    assert failed[("users", "primary_key")].metadata["offending_keys"].value == [
        {"id": first_id},
        {"id": first_id, "email": duplicate.column("email")[0].as_py()},
    ]
    assert failed[("users", "row_count")].metadata["rows"].value == 25
    assert failed[("users", "row_count")].metadata["source_rows"].value == 24

    body = _quality(tmp)
    assert body["restorable"] is False
    assert body["failed"] == {"public.users": ["row_count", "primary_key"]}
    # Tables not re-checked keep their earlier results, so the report still covers every table.
    assert len(body["tables"]) == len(catalog.tables)
