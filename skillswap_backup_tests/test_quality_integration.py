"""Data quality end to end: the backup's checks, the manifest's verdict, `report`, the restore gate
(`--force`), and the same suites run on the restored database.

Two sources, each backed up once by the real backup job with its checks:
- the clean demo, whose snapshot is copied and then tampered with (its Parquet rewritten with
  pyarrow: one broken rule per family) before only the checks re-run on the copy;
- a demo whose source itself breaks two rules behind NOT VALID constraints (an orphan rating
  behind a foreign key, a rating of 9 behind a CHECK): its own consistent snapshot fails its
  checks, `backup` exits non-zero, and `restore` refuses it unless --force, which then reports
  the violations it carried over.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skillswap_backup.cli.runs import failures
from skillswap_backup.lib import restore, restore_quality, restore_verify
from skillswap_backup.lib.catalog import load_catalog
from skillswap_backup.lib.manifest import read_manifest
from skillswap_backup.lib.quality import FAMILIES, plan_catalog
from skillswap_backup.lib.quality.results import FamilyResult, TableQuality
from skillswap_backup.lib.storage import SnapshotStore
from skillswap_backup_tests.lifecycle_support import backup_partition, cli_instance, demo_source, discover, environment
from skillswap_backup_tests.pgtools import scratch_database
from skillswap_backup_tests.restore_support import SECRET, one_line, restore_run, run_cli

KEY = "2026-11-22"
TAMPERED = "2026-11-15"
UNCHECKED = "2026-11-08"
RATER_FK = "swap_ratings_rater_id_users_id_fk"

# The source breaks two rules the way old production data does: constraints added NOT VALID
# over rows that predate them.
NOT_VALID_SQL = f"""
ALTER TABLE swap_ratings DROP CONSTRAINT {RATER_FK};
ALTER TABLE swap_ratings DROP CONSTRAINT swap_ratings_rating_check;
INSERT INTO swap_ratings (id, swap_request_id, rater_id, rated_user_id, rating, comment)
    SELECT 1001, swap_request_id, 9999, rated_user_id, 3, 'rater deleted long ago' FROM swap_ratings WHERE id = 1;
INSERT INTO swap_ratings (id, swap_request_id, rater_id, rated_user_id, rating, comment)
    SELECT 1002, r.id, u.id, r.recipient_id, 9, 'before the 1-5 scale' FROM swap_requests r CROSS JOIN users u
    WHERE NOT EXISTS (SELECT 1 FROM swap_ratings s WHERE s.swap_request_id = r.id AND s.rater_id = u.id)
    ORDER BY r.id, u.id LIMIT 1;
ALTER TABLE swap_ratings ADD CONSTRAINT {RATER_FK} FOREIGN KEY (rater_id) REFERENCES users(id) ON DELETE CASCADE NOT VALID;
ALTER TABLE swap_ratings ADD CONSTRAINT swap_ratings_rating_check CHECK (rating BETWEEN 1 AND 5) NOT VALID;
"""


def _settings(tmp: Path) -> dict[str, str]:
    return {"BACKUP_ROOT": str(tmp / "backups"), "BACKUP_CATALOG": str(tmp / "catalog.json")}


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The demo backed up (tables, checks, manifest) by the real backup job: (tmp, instance, result)."""
    tmp = tmp_path_factory.mktemp("quality_clean")
    with demo_source("ssb_test_qi_clean", tmp), dg.instance_for_test() as instance:
        result = backup_partition(KEY, instance)
        yield tmp, instance, result


@pytest.fixture(scope="module")
def dirty(tmp_path_factory):
    """The NOT VALID source backed up with `skillswap-backup backup` through a PostgreSQL-backed
    Dagster instance: (tmp, CLI environment, the backup's CompletedProcess)."""
    tmp = tmp_path_factory.mktemp("quality_dirty")
    with demo_source("ssb_test_qi_dirty", tmp) as url, cli_instance(tmp) as instance_env:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(NOT_VALID_SQL)
        discover(url, tmp / "catalog.json")
        env = {"DATABASE_URL": url, **_settings(tmp), **instance_env}
        backup = run_cli("backup", "--partition", KEY, env=env)
        yield tmp, env, backup


def _manifest(tmp: Path, key: str) -> dict:
    return json.loads((tmp / "backups" / key / "manifest.json").read_text())


# ---- the clean demo ------------------------------------------------------------------------------


def test_clean_snapshot_passes_every_check_and_the_manifest_says_restorable(clean):
    tmp, _, result = clean
    catalog = load_catalog(tmp / "catalog.json")
    evaluations = [e for e in result.get_asset_check_evaluations() if e.check_name in FAMILIES]
    assert len(evaluations) >= 3 * len(catalog.tables)
    assert [e.check_name for e in evaluations if not e.passed] == []
    assert failures(result) == []
    quality = _manifest(tmp, KEY)["quality"]
    assert quality["status"] == "passed" and quality["restorable"] is True and quality["failed"] == {}
    assert quality["report"] == "reports/index.html"
    index = (tmp / "backups" / KEY / "reports" / "index.html").read_text()
    assert all(t.qualified in index for t in catalog.tables)

    out = run_cli("report", env=_settings(tmp))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"snapshot {KEY}: data quality passed, restorable"
    assert lines[1].startswith(f"Data quality: {len(catalog.tables)} tables,") and " 0 failed" in lines[1]
    assert any(line.split()[:2] == ["public.swap_ratings", "ok"] and "8 rows (source 8)" in line for line in lines)
    html = next(line for line in lines if line.startswith("HTML report"))
    assert Path(html.split(": ", 1)[1]) == tmp / "backups" / KEY / "reports" / "index.html"


def _copy_snapshot(tmp: Path, key: str) -> None:
    """The clean snapshot under another partition key, without its quality verdict or reports."""
    shutil.copytree(tmp / "backups" / KEY, tmp / "backups" / key, ignore=shutil.ignore_patterns("reports"))
    path = tmp / "backups" / key / "manifest.json"
    body = json.loads(path.read_text())
    body["partition_key"], body["quality"] = key, {}
    path.write_text(json.dumps(body))


def _rewrite(path: Path, change) -> pa.Table:
    """Rewrite one Parquet part with pyarrow, keeping its schema metadata (PostgreSQL types)."""
    data = pq.read_table(path)
    changed = change(data)
    schema = pa.schema([f.with_nullable(True) for f in changed.schema], metadata=data.schema.metadata)
    pq.write_table(changed.cast(schema), path)
    return data


def _set(data: pa.Table, column: str, row: int, value) -> pa.Table:
    values = data.column(column).to_pylist()
    values[row] = value
    index = data.schema.get_field_index(column)
    field = data.schema.field(column).with_nullable(True)
    return data.set_column(index, field, pa.array(values, type=field.type))


def test_tampered_snapshot_fails_each_family_naming_the_offending_keys(clean):
    tmp, instance, _ = clean
    catalog = load_catalog(tmp / "catalog.json")
    _copy_snapshot(tmp, TAMPERED)
    store = SnapshotStore(str(tmp / "backups"), TAMPERED)

    def part(name: str) -> Path:
        (relative,) = store.table_parts(catalog.table(name))
        return tmp / "backups" / TAMPERED / relative

    skills = _rewrite(part("skills"), lambda d: _set(d, "category", 0, None))
    offered = _rewrite(part("user_skills_offered"), lambda d: _set(d, "id", 1, d.column("id")[0].as_py()))
    ratings = _rewrite(part("swap_ratings"), lambda d: _set(_set(d, "rating", 0, 9), "rater_id", 1, 99999))
    notifications = _rewrite(part("notifications"), lambda d: d.slice(0, d.num_rows - 1))

    from skillswap_backup.definitions import build_definitions

    with environment(**_settings(tmp)):
        defs = build_definitions()
        plans = plan_catalog(catalog)
        checks = {dg.AssetCheckKey(dg.AssetKey(t.asset_path), f) for t in catalog.tables for f in plans[t.qualified].families()}
        job = defs.resolve_job_def("backup").get_subset(asset_selection=set(), asset_check_selection=checks)
        result = job.execute_in_process(partition_key=TAMPERED, instance=instance, raise_on_error=False)
    failed = {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations() if not e.passed}
    assert set(failed) == {
        ("skills", "not_null"),
        ("user_skills_offered", "primary_key"),
        ("swap_ratings", "check_constraints"),
        ("swap_ratings", "foreign_keys"),
        ("notifications", "row_count"),
    }

    def keys(table: str, family: str) -> list[dict]:
        return failed[(table, family)].metadata["offending_keys"].value

    assert keys("skills", "not_null") == [{"id": skills.column("id")[0].as_py(), "category": None}]
    assert keys("user_skills_offered", "primary_key") == [{"id": offered.column("id")[0].as_py()}]
    assert keys("swap_ratings", "check_constraints") == [{"id": ratings.column("id")[0].as_py(), "rating": 9}]
    assert keys("swap_ratings", "foreign_keys") == [{"id": ratings.column("id")[1].as_py(), "rater_id": 99999}]
    row_count = failed[("notifications", "row_count")].metadata
    assert (row_count["rows"].value, row_count["source_rows"].value) == (notifications.num_rows - 1, notifications.num_rows)
    # Only row-count, primary-key and foreign-key failures are errors: they make `backup` exit non-zero.
    assert sorted(failures(result)) == [
        "check foreign_keys on skillswap/swap_ratings failed",
        "check primary_key on skillswap/user_skills_offered failed",
        "check row_count on skillswap/notifications failed",
    ]
    assert failed[("skills", "not_null")].severity == dg.AssetCheckSeverity.WARN

    quality = _manifest(tmp, TAMPERED)["quality"]
    assert quality["status"] == "failed" and quality["restorable"] is False
    assert quality["failed"] == {
        "public.skills": ["not_null"],
        "public.user_skills_offered": ["primary_key"],
        "public.notifications": ["row_count"],
        "public.swap_ratings": ["check_constraints", "foreign_keys"],
    }
    index = (tmp / "backups" / TAMPERED / "reports" / "index.html").read_text()
    assert all(t.qualified in index for t in catalog.tables)

    out = run_cli("report", TAMPERED, env=_settings(tmp))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"SNAPSHOT {TAMPERED} IS NOT RESTORABLE")
    assert "offending keys: {\"id\": %d, \"rater_id\": 99999}" % ratings.column("id")[1].as_py() in out.stdout
    assert "row_count FAILED (blocking): expected 3 rows" in out.stdout

    # The gate sees it before anything touches a target (the target is never even connected to).
    manifest = read_manifest(store)
    with pytest.raises(restore_quality.SnapshotNotRestorable) as refused:
        restore.plan_restore(store, manifest, f"postgresql://postgres:{SECRET}@127.0.0.1:1/nowhere", restore.RestoreOptions(snapshot=TAMPERED))
    message = str(refused.value)
    assert "NOT RESTORABLE" in message and "--force" in message and SECRET not in message
    for needle in ("public.user_skills_offered primary_key", "public.notifications row_count", "public.swap_ratings foreign_keys"):
        assert needle in message
    # A partial restore of tables that passed is not held back by the others.
    gate = restore_quality.gate(manifest, ["public.skills", "public.users"], store=store)
    assert gate.blocking() == {} and gate.elsewhere["public.swap_ratings"] == ["foreign_keys"]
    assert any(line.startswith("warning:") and "public.skills not_null" in line for line in gate.lines())


def test_unchecked_snapshot_restores_with_a_warning(clean):
    tmp, _, _ = clean
    _copy_snapshot(tmp, UNCHECKED)  # as when the checks never ran
    store = SnapshotStore(str(tmp / "backups"), UNCHECKED)
    logged: list[str] = []
    with scratch_database("ssb_test_qi_unchecked") as target:
        report = restore.restore_snapshot(store, target, options=restore.RestoreOptions(snapshot=UNCHECKED), log=logged.append)
    assert report.ok
    warning = [line for line in logged if "no data-quality verdict" in line]
    assert warning and warning[0].startswith(f"warning: snapshot {UNCHECKED} has no data-quality verdict yet")
    assert report.quality["status"] == "passed" and report.quality["checks"] == report.quality["passed"] > 20


def test_post_restore_validation_fails_when_the_target_is_tampered_after_the_load(clean):
    tmp, _, _ = clean
    store = SnapshotStore(str(tmp / "backups"), KEY)
    manifest = read_manifest(store)
    with scratch_database("ssb_test_qi_tamper") as target:
        plan = restore.plan_restore(store, manifest, target, restore.RestoreOptions(snapshot=KEY))
        restore.apply_schema(store, manifest, target, plan, log=lambda _: None)
        loads = restore.load_tables(store, manifest, target, plan, log=lambda _: None)
        restore.apply_post_data(store, manifest, target, plan, log=lambda _: None)
        restore.set_sequences(store, manifest, target, plan, log=lambda _: None)
        # Between the load and the validation: a rating loses its rater, a skill its category.
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(f"ALTER TABLE swap_ratings DROP CONSTRAINT {RATER_FK}")
            conn.execute("UPDATE swap_ratings SET rater_id = 424242 WHERE id = 3")
            conn.execute("ALTER TABLE skills ALTER COLUMN category DROP NOT NULL")
            conn.execute("UPDATE skills SET category = NULL WHERE id = 5")
        verdict, _ = restore_quality.validate_target(manifest, target, plan.tables)
        report = restore_verify.verify(manifest, target, plan, loads, log=lambda _: None)
    assert verdict.status == "failed" and verdict.carried_over == []
    assert [p.split(":")[0] for p in verdict.problems] == ["public.skills not_null", "public.swap_ratings foreign_keys"]
    assert '{"id": 3, "rater_id": 424242}' in verdict.problems[1] and '{"id": 5, "category": null}' in verdict.problems[0]
    assert not report.ok
    assert any(p.startswith("data quality: public.swap_ratings foreign_keys") and "424242" in p for p in report.problems)
    with pytest.raises(restore_verify.RestoreVerificationFailed, match="data quality: public.skills not_null"):
        restore_verify.require_ok(report)


def _restored(store, manifest, target, **options):
    plan = restore.plan_restore(store, manifest, target, restore.RestoreOptions(snapshot=KEY, **options))
    restore.apply_schema(store, manifest, target, plan, log=lambda _: None)
    loads = restore.load_tables(store, manifest, target, plan, log=lambda _: None)
    restore.apply_post_data(store, manifest, target, plan, log=lambda _: None)
    restore.set_sequences(store, manifest, target, plan, log=lambda _: None)
    return plan, loads


def test_a_target_identical_to_the_snapshot_takes_its_results_and_validate_target_reruns_them(clean):
    tmp, _, _ = clean
    store = SnapshotStore(str(tmp / "backups"), KEY)
    manifest = read_manifest(store)
    snapshot = json.loads((tmp / "backups" / KEY / "reports" / "quality.json").read_text())
    checks = sum(len(t["families"]) for t in snapshot["tables"])
    with scratch_database("ssb_test_qi_basis") as target:
        plan, loads = _restored(store, manifest, target)
        carried = restore_verify.verify(manifest, target, plan, loads, log=lambda _: None, store=store)
        plan.validate_target = True
        rerun = restore_verify.verify(manifest, target, plan, loads, log=lambda _: None, store=store)
    assert carried.ok and rerun.ok
    assert carried.quality["basis"] == "snapshot" and rerun.quality["basis"] == "target"
    for report in (carried, rerun):
        assert (report.quality["status"], report.quality["checks"], report.quality["passed"]) == ("passed", checks, checks)
    # Results that cannot be shown to have judged these very files are never carried over.
    assert restore_quality.snapshot_results(store, manifest, plan.tables) is not None
    unchecked = {**manifest, "quality": {"status": "unchecked"}}
    assert restore_quality.snapshot_results(store, unchecked, plan.tables) is None
    recounted = json.loads(json.dumps(manifest))
    recounted["tables"]["public.skills"]["rows"] += 1
    assert restore_quality.snapshot_results(store, recounted, plan.tables) is None


def test_a_target_that_differs_from_the_snapshot_is_validated_itself_naming_the_rows(clean):
    tmp, _, _ = clean
    store = SnapshotStore(str(tmp / "backups"), KEY)
    manifest = read_manifest(store)
    with scratch_database("ssb_test_qi_differs") as target:
        plan, loads = _restored(store, manifest, target)
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(f"ALTER TABLE swap_ratings DROP CONSTRAINT {RATER_FK}")
            conn.execute("UPDATE swap_ratings SET rater_id = 424242 WHERE id = 3")
        report = restore_verify.verify(manifest, target, plan, loads, log=lambda _: None, store=store)
    assert not report.ok and report.quality["basis"] == "target"
    assert any(p.startswith("public.swap_ratings: content checksum") for p in report.problems)
    assert any(p.startswith("data quality: public.swap_ratings foreign_keys") and "424242" in p for p in report.problems)


def _family(table: str, family: str, passed: bool, count: int) -> TableQuality:
    result = TableQuality(table=table, asset_path=["skillswap", table], rows=1, source_rows=1)
    result.families[family] = FamilyResult(family, passed, "expected", "observed", unexpected_count=count)
    return result


def test_only_violations_the_snapshot_already_had_are_carried_over():
    known = {"public.r": {"foreign_keys": 2, "check_constraints": None}}
    same = restore_quality.judge([_family("public.r", "foreign_keys", False, 2)], known)
    assert same.status == "carried_over" and same.ok and len(same.carried_over) == 1
    more = restore_quality.judge([_family("public.r", "foreign_keys", False, 3)], known)
    assert more.status == "failed" and more.problems and not more.carried_over
    unknown_count = restore_quality.judge([_family("public.r", "check_constraints", False, 50)], known)
    assert unknown_count.ok
    new_table = restore_quality.judge([_family("public.s", "foreign_keys", False, 1)], known)
    assert not new_table.ok
    assert restore_quality.judge([_family("public.s", "primary_key", True, 0)], {}).status == "passed"


# ---- the source with NOT VALID violations ----------------------------------------------------------


def test_backup_of_a_source_breaking_its_rules_exits_non_zero_naming_the_check(dirty):
    tmp, _, backup = dirty
    assert backup.returncode == 1
    # The run's log goes to stderr too; the command's own verdict is its last line.
    line = backup.stderr.strip().splitlines()[-1]
    assert line.startswith(f"skillswap-backup backup: backup of {KEY} failed (run ")
    assert line.endswith("check foreign_keys on skillswap/swap_ratings failed")  # check_constraints only warns
    # The snapshot is complete (a faithful copy of its source) and marked not restorable.
    quality = _manifest(tmp, KEY)["quality"]
    assert quality["restorable"] is False and quality["failed"] == {"public.swap_ratings": ["check_constraints", "foreign_keys"]}


def test_list_and_report_say_not_restorable(dirty):
    tmp, env, _ = dirty
    listed = run_cli("list", env=env)
    assert listed.returncode == 0 and listed.stdout.splitlines()[1].split()[-1] == "failed"
    out = run_cli("report", env=env)
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0]
    assert first.startswith(f"SNAPSHOT {KEY} IS NOT RESTORABLE") and "public.swap_ratings: check_constraints, foreign_keys" in first
    assert '{"id": 1001, "rater_id": 9999}' in out.stdout and '{"id": 1002, "rating": 9}' in out.stdout
    missing = run_cli("report", "2020-01-05", env=env)
    assert missing.returncode == 1
    one_line(missing.stderr, "'2020-01-05' is not a complete snapshot")


def test_restore_refuses_the_snapshot_then_force_carries_the_violations_over(dirty):
    tmp, env, _ = dirty
    with scratch_database("ssb_test_qi_force") as target:
        url = target.replace("postgres@", f"postgres:{SECRET}@")
        refused = run_cli("restore", "--target-url", url, env=env)
        assert refused.returncode == 1
        one_line(refused.stderr, f"snapshot {KEY} is NOT RESTORABLE", "public.swap_ratings foreign_keys", "1 orphan row", "--force")
        with psycopg.connect(target) as conn:
            assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 0

        forced = run_cli("restore", "--force", "--target-url", url, env=env)
        assert forced.returncode == 0, forced.stderr[-3000:]
        out = forced.stdout
        assert f"--force: restoring snapshot {KEY} although it is NOT RESTORABLE" in out
        carried = [line for line in out.splitlines() if "carried over from the snapshot: public.swap_ratings" in line]
        assert any("foreign_keys" in line and '{"id": 1001, "rater_id": 9999}' in line for line in carried)
        assert any("check_constraints" in line and '{"id": 1002, "rating": 9}' in line for line in carried)
        assert "verified: every table matches the snapshot (violations the snapshot already had are carried over" in out
        assert "(content identical to the snapshot by checksum, constraints validated by PostgreSQL" in out
        assert SECRET not in out + forced.stderr
        with psycopg.connect(target) as conn:
            assert conn.execute("SELECT rater_id FROM swap_ratings WHERE id = 1001").fetchone() == (9999,)
            valid = conn.execute("SELECT convalidated FROM pg_constraint WHERE conname = %s", (RATER_FK,)).fetchone()
            assert valid == (False,)  # NOT VALID, as in the source

    reports = sorted((tmp / "backups" / KEY / "reports").glob("restore-ssb_test_qi_force_*"))
    assert len(reports) == 1
    index = reports[0] / "index.html"
    assert f"restore quality report: {index}" in out
    body = json.loads((reports[0] / "quality.json").read_text())
    assert body["status"] == "carried_over" and body["target_database"] == target.rsplit("/", 1)[-1]
    assert len(body["carried_over"]) == 2 and body["problems"] == []
    catalog = load_catalog(tmp / "catalog.json")
    html = index.read_text()
    assert all(t.qualified in html for t in catalog.tables)
    written = "".join(p.read_text(errors="replace") for p in reports[0].rglob("*") if p.is_file())
    assert SECRET not in written and "postgresql://" not in written and "127.0.0.1" not in written
    assert not (reports[0] / "static").exists()  # the pages share the snapshot's reports/static/

    listed = run_cli("report", env=env)
    assert f"restore report: {index}" in listed.stdout


def test_restore_job_refuses_then_forced_records_the_verdict_in_its_metadata(dirty):
    tmp, _, _ = dirty
    with environment(**_settings(tmp)), dg.instance_for_test() as instance, scratch_database("ssb_test_qi_job") as target:
        refused = restore_run(instance, target, snapshot=KEY)
        assert not refused.success
        (failure,) = [e for e in refused.all_events if e.is_step_failure]
        assert failure.step_key == "restore_plan"
        description = failure.step_failure_data.user_failure_data.description
        assert "NOT RESTORABLE" in description and "public.swap_ratings foreign_keys" in description and "--force" in description

        forced = restore_run(instance, target, snapshot=KEY, force=True)
        assert forced.success
        (output,) = [e for e in forced.all_events if e.is_successful_output and e.step_key == "verify_restore"]
        metadata = output.step_output_data.metadata
        assert metadata["verified"].value is True and metadata["data_quality"].value == "carried_over"
        assert [c.split(":")[0] for c in metadata["carried_over"].value] == [
            "public.swap_ratings check_constraints", "public.swap_ratings foreign_keys",
        ]
        assert Path(metadata["data_quality_report"].value).is_file()
        assert "public.swap_ratings" in metadata["data_quality_summary"].value


def test_forced_data_only_restore_keeps_the_orphans_foreign_key_not_valid(dirty):
    from skillswap_backup.lib import dumps, pg
    from skillswap_backup_tests.pgtools import database_name
    from skillswap_backup_tests.restore_support import report_of

    tmp, _, _ = dirty
    with environment(**_settings(tmp)), dg.instance_for_test() as instance, scratch_database("ssb_test_qi_data") as target:
        # The app's migrations made the tables, their foreign key and CHECK validated (as on an empty table).
        with pg.libpq_env(target) as env:
            subprocess.run(["pg_restore", "--no-owner", "--no-acl", "--exit-on-error", f"--dbname={database_name(target)}",
                            str(tmp / "backups" / KEY / dumps.SCHEMA_DUMP)], env=env, check=True, capture_output=True)
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(f"ALTER TABLE swap_ratings VALIDATE CONSTRAINT {RATER_FK}")
            conn.execute("ALTER TABLE swap_ratings VALIDATE CONSTRAINT swap_ratings_rating_check")
        assert not restore_run(instance, target, snapshot=KEY, mode="data-only").success
        result = restore_run(instance, target, snapshot=KEY, mode="data-only", force=True)
        report = report_of(result)
        assert report["ok"] and report["quality"]["status"] == "carried_over"
        assert "left NOT VALID over the violations the snapshot carries: " \
            f"swap_ratings.{RATER_FK}, swap_ratings.swap_ratings_rating_check" in report["notes"]
        assert "16 foreign keys were dropped for the load and added back validated" in report["notes"]
        with psycopg.connect(target) as conn:
            validated = dict(conn.execute("SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'swap_ratings'::regclass").fetchall())
            assert validated[RATER_FK] is False and validated["swap_ratings_rating_check"] is False
            assert validated["swap_ratings_rated_user_id_users_id_fk"] is True
            assert conn.execute("SELECT count(*) FROM swap_ratings").fetchone() == (10,)


def test_the_backup_run_never_imports_great_expectations(tmp_path):
    """The checks run in a child process: the run's own process stays free of GX's ~260 MB."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "import dagster as dg\n"
        "from skillswap_backup_tests.lifecycle_support import backup_partition, demo_source\n"
        "with demo_source('ssb_test_qi_nogx', Path(sys.argv[1])), dg.instance_for_test() as instance:\n"
        "    evaluations = backup_partition('2026-11-22', instance).get_asset_check_evaluations()\n"
        "    print(len(evaluations), all(e.passed for e in evaluations), 'great_expectations' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    count, passed, imported = out.stdout.split()[-3:]
    assert int(count) >= 30 and passed == "True" and imported == "False"
    assert json.loads((tmp_path / "backups" / KEY / "reports" / "quality.json").read_text())["restorable"] is True
