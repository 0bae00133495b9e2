"""Schedules, freshness and expiry with Dagster's test utilities and a fixed clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from skillswap_backup.cli.main import main
from skillswap_backup.defs.lifecycle import build_lifecycle_definitions
from skillswap_backup.defs.lifecycle.jobs import verify_job
from skillswap_backup.defs.lifecycle.schedules import BACKUP_SCHEDULE, VERIFY_SCHEDULE, verify_cron
from skillswap_backup.defs.lifecycle.sensors import (
    EXPIRY_CHECK, EXPIRY_SENSOR, FINAL_TAG, FRESHNESS_CHECK, SNAPSHOTS_KEY, build_sensors,
)
from skillswap_backup.defs.partitions import snapshot_partitions
from skillswap_backup.defs.resources import BackupStorage
from skillswap_backup.lib import freshness, verify
from skillswap_backup.lib.manifest import read_manifest
from skillswap_backup.lib.storage import SnapshotStore
from skillswap_backup_tests.lifecycle_support import backup_partition, copy_snapshot, demo_source, environment

KEY = "2026-03-01"


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("schedules")
    with demo_source("ssb_test_lc_sched", tmp), dg.instance_for_test() as instance:
        assert backup_partition(KEY, instance).success
        yield tmp / "backups"


@pytest.fixture
def root(source, tmp_path) -> Path:
    copy_snapshot(source, KEY, tmp_path)
    return tmp_path


def _finished(root: Path) -> datetime:
    return datetime.fromisoformat(read_manifest(SnapshotStore(str(root), KEY))["finished_at"])


def _tick(defs: dg.Definitions, name: str, when: datetime):
    schedule = defs.resolve_schedule_def(name)
    return schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=when))


# ---- schedules -------------------------------------------------------------------------------------


def test_weekly_backup_tick_requests_the_window_it_opens(source):
    from skillswap_backup.definitions import build_definitions

    with environment(BACKUP_CRON=None, BACKUP_TIMEZONE=None):
        defs = build_definitions()
        schedule = defs.resolve_schedule_def(BACKUP_SCHEDULE)
        assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 3 * * 0", "UTC")
        for when, key in [
            (datetime(2026, 3, 1, 3, 0, tzinfo=timezone.utc), "2026-03-01"),
            (datetime(2026, 3, 8, 3, 0, tzinfo=timezone.utc), "2026-03-08"),
        ]:
            result = _tick(defs, BACKUP_SCHEDULE, when)
            assert [(r.partition_key, r.job_name) for r in result.run_requests] == [(key, "backup")]


def test_backup_schedule_follows_backup_cron_and_timezone(source):
    from skillswap_backup.definitions import build_definitions

    with environment(BACKUP_CRON="30 1 * * *", BACKUP_TIMEZONE="Europe/Berlin"):
        defs = build_definitions()
        schedule = defs.resolve_schedule_def(BACKUP_SCHEDULE)
        assert (schedule.cron_schedule, schedule.execution_timezone) == ("30 1 * * *", "Europe/Berlin")
        # 01:30 in Berlin is still the previous day in UTC: the key must follow the schedule's zone.
        when = datetime(2026, 3, 10, 1, 30, tzinfo=ZoneInfo("Europe/Berlin"))
        result = _tick(defs, BACKUP_SCHEDULE, when)
        assert [r.partition_key for r in result.run_requests] == ["2026-03-10"]
        assert defs.resolve_schedule_def(VERIFY_SCHEDULE).cron_schedule == "30 3 * * *"


def test_weekly_verify_runs_after_the_backup_with_a_restore_test(source):
    from skillswap_backup.definitions import build_definitions

    with environment(BACKUP_CRON=None, BACKUP_TIMEZONE=None, VERIFY_CRON=None):
        defs = build_definitions()
        assert defs.resolve_schedule_def(VERIFY_SCHEDULE).cron_schedule == "0 5 * * 0"
        result = _tick(defs, VERIFY_SCHEDULE, datetime(2026, 3, 1, 5, 0, tzinfo=timezone.utc))
        (request,) = result.run_requests
        assert defs.resolve_schedule_def(VERIFY_SCHEDULE).job_name == "verify"
        assert request.run_config["ops"]["verify_snapshot"]["config"] == {"snapshot": "", "restore_test": True}


@pytest.mark.parametrize(
    ("backup", "override", "expected"),
    [
        ("0 3 * * 0", None, "0 5 * * 0"),
        ("15 23 * * 6", None, "15 1 * * 0"),
        ("0 23 * * *", None, "0 1 * * *"),
        ("0 3 * * 0", "0 12 * * 1", "0 12 * * 1"),
    ],
)
def test_verify_cron_is_derived_from_the_backup_cron(backup, override, expected):
    with environment(BACKUP_CRON=backup):
        assert verify_cron({"VERIFY_CRON": override} if override else {}) == expected


# ---- freshness -------------------------------------------------------------------------------------


def _sensors(root: Path, now: datetime) -> dict[str, dg.SensorDefinition]:
    from skillswap_backup.defs.backup.jobs import build_backup_job

    partitions = snapshot_partitions()
    sensors = build_sensors(
        backup_job=build_backup_job(), verify_job=verify_job, partitions=partitions, clock=lambda: now
    )
    return {s.name: s for s in sensors}


def _evaluate(root: Path, now: datetime, name: str) -> dg.SensorResult:
    sensor = _sensors(root, now)[name]
    context = dg.build_sensor_context(resources={"storage": BackupStorage(root=str(root))})
    return sensor(context)


@pytest.mark.parametrize(("days_later", "fresh"), [(1, True), (7, True), (7.3, False), (20, False)])
def test_freshness_sensor_warns_when_the_newest_snapshot_is_late(root, days_later, fresh):
    with environment(BACKUP_FRESHNESS_GRACE_HOURS=None, BACKUP_CRON=None):
        now = _finished(root) + timedelta(days=days_later)
        result = _evaluate(root, now, "snapshot_freshness")
    (evaluation,) = result.asset_events
    assert evaluation.check_name == FRESHNESS_CHECK and evaluation.passed is fresh
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["newest_snapshot"].value == KEY
    assert result.skip_reason.skip_message.startswith("fresh" if fresh else "STALE")


def test_freshness_sensor_without_any_snapshot_fails_the_check(tmp_path):
    result = _evaluate(tmp_path, datetime(2026, 3, 2, tzinfo=timezone.utc), "snapshot_freshness")
    assert result.asset_events[0].passed is False
    assert "no complete snapshot" in result.skip_reason.skip_message


def test_freshness_check_is_defined_on_the_manifest(source):
    from skillswap_backup.definitions import build_definitions

    defs = build_definitions()
    keys = {key for check in defs.asset_checks for key in check.check_keys}
    status_checks = {dg.AssetCheckKey(SNAPSHOTS_KEY, FRESHNESS_CHECK), dg.AssetCheckKey(SNAPSHOTS_KEY, EXPIRY_CHECK)}
    assert status_checks <= keys
    graph = defs.resolve_asset_graph()
    assert graph.get(SNAPSHOTS_KEY).parent_keys == {dg.AssetKey(["skillswap", "manifest"])}
    # They judge all snapshots, so backup runs (one partition) do not run them.
    backup_checks = set(defs.resolve_job_def("backup").asset_layer.asset_graph.asset_check_keys)
    assert not status_checks & backup_checks


# ---- expiry ----------------------------------------------------------------------------------------


def _expiry(
    root: Path, now: datetime, expires_in_days: int | None, warn: str | None = None, *, counted_from: datetime | None = None
) -> dg.SensorResult:
    """The expiry sensor at `now`, the source expiring `expires_in_days` after `counted_from` (now)."""
    start = (counted_from or now).date()
    expires = None if expires_in_days is None else (start + timedelta(days=expires_in_days)).isoformat()
    with environment(SOURCE_EXPIRES_ON=expires, EXPIRY_WARN_DAYS=warn):
        return _evaluate(root, now, EXPIRY_SENSOR)


def test_expiry_sensor_is_quiet_without_a_date_or_far_from_it(root):
    now = _finished(root) + timedelta(hours=1)
    unset = _expiry(root, now, None)
    assert "not set" in unset.skip_reason.skip_message and not unset.asset_events
    far = _expiry(root, now, 30)
    assert not far.run_requests and "expires in 30 days" in far.skip_reason.skip_message
    (check,) = far.asset_events
    assert check.check_name == EXPIRY_CHECK and check.passed and check.metadata["days_left"].value == 30


def test_expiry_sensor_launches_a_final_backup_of_the_current_window_once(root):
    now = _finished(root) + timedelta(days=10)  # the snapshot predates the warning window
    # One expiry date for both ticks, also when the second one falls on the next day.
    first, second = _expiry(root, now, 3), _expiry(root, now + timedelta(hours=1), 3, counted_from=now)
    (request,) = first.run_requests
    expected_key = snapshot_partitions().get_partition_key_for_timestamp(now.timestamp())
    assert (request.job_name, request.partition_key) == ("backup", expected_key)
    assert request.tags[FINAL_TAG] == (now.date() + timedelta(days=3)).isoformat()
    (check,) = first.asset_events
    assert check.check_name == EXPIRY_CHECK and not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert "SOURCE DATABASE EXPIRES IN 3 DAYS" in check.description and "NO FINAL SNAPSHOT" in check.description
    # The same run key on every tick: Dagster launches it once.
    assert second.run_requests[0].run_key == request.run_key


def test_expiry_sensor_verifies_the_final_snapshot_with_a_restore_test(root):
    now = _finished(root) + timedelta(hours=2)
    (request,) = _expiry(root, now, 5).run_requests
    assert request.job_name == "verify"
    assert request.run_config["ops"]["verify_snapshot"]["config"] == {"snapshot": KEY, "restore_test": True}
    # A verification without the restore test does not make the final snapshot safe.
    store = SnapshotStore(str(root), KEY)
    verify.record(store, verify.verify_snapshot(store))
    assert _expiry(root, now, 5).run_requests[0].job_name == "verify"


def test_expiry_sensor_rests_once_the_final_snapshot_restored(root):
    now = _finished(root) + timedelta(hours=2)
    store = SnapshotStore(str(root), KEY)
    report = verify.verify_snapshot(store)
    report.restore_test = {"ok": True, "tables": 10, "rows": 277}  # the outcome a passing restore test records
    verify.record(store, report)
    result = _expiry(root, now, 5)
    assert not result.run_requests
    assert f"verified final snapshot {KEY}" in result.skip_reason.skip_message
    assert result.asset_events[0].passed and result.asset_events[0].metadata["verified_final_snapshot"].value == KEY


def test_expiry_status_lines(root):
    now = _finished(root) + timedelta(days=10)
    status = freshness.lifecycle_status(
        str(root), now=now, cadence=timedelta(days=7), grace=timedelta(hours=6),
        expiry=freshness.ExpirySettings(now.date() + timedelta(days=2), 7),
    )
    assert status.days_left == 2 and status.in_expiry_window and status.needs_attention
    assert "SOURCE DATABASE EXPIRES IN 2 DAYS" in status.expiry_line()
    assert "NO FINAL SNAPSHOT" in status.expiry_line()
    expired = freshness.lifecycle_status(
        str(root), now=now, cadence=timedelta(days=7), grace=timedelta(0),
        expiry=freshness.ExpirySettings(now.date() - timedelta(days=1), 7),
    )
    assert "EXPIRED 1 DAYS AGO" in expired.expiry_line()


def _days_left_since(today, expires) -> set[int]:
    """The days a check counts from `today` to `expires`, or from the next day if the test
    crossed midnight meanwhile."""
    return {(expires - today).days, (expires - datetime.now(timezone.utc).date()).days}


def test_cli_status_says_how_many_days_are_left(root, capsys):
    today = datetime.now(timezone.utc).date()
    with environment(BACKUP_ROOT=str(root), SOURCE_EXPIRES_ON=(today + timedelta(days=3)).isoformat(), EXPIRY_WARN_DAYS="7"):
        code = main(["status", "--strict"])
    out = capsys.readouterr().out
    assert any(f"SOURCE DATABASE EXPIRES IN {n} DAYS" in out for n in _days_left_since(today, today + timedelta(days=3)))
    assert code == 2 and "NOT VERIFIED" in out
    (root / KEY / "json" / "users.json").write_text("[]\n")
    store = SnapshotStore(str(root), KEY)
    verify.record(store, verify.verify_snapshot(store))
    with environment(BACKUP_ROOT=str(root), SOURCE_EXPIRES_ON=(today + timedelta(days=40)).isoformat()):
        assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert any(f"expires in {n} days" in out for n in _days_left_since(today, today + timedelta(days=40)))
    assert f"{KEY}" in out and "VERIFY FAILED" in out
    assert "newest verified snapshot: NONE" in out


def test_bad_expiry_settings_are_one_clear_line(root, capsys):
    with environment(BACKUP_ROOT=str(root), SOURCE_EXPIRES_ON="next month"):
        assert main(["status"]) == 1
    assert "SOURCE_EXPIRES_ON='next month' is not a date" in capsys.readouterr().err


def test_lifecycle_definitions_load(source):
    from skillswap_backup.defs.backup.jobs import build_backup_job

    partitions = snapshot_partitions()
    defs = build_lifecycle_definitions(backup_job=build_backup_job(), partitions=partitions)
    assert {s.name for s in defs.schedules} == {BACKUP_SCHEDULE, VERIFY_SCHEDULE}
    assert {s.name for s in defs.sensors} == {"snapshot_freshness", EXPIRY_SENSOR, "copy_after_backup"}
    # The jobs they launch are the project's own (defined with restore: they need no catalog).
    from skillswap_backup.definitions import build_definitions

    assert {"backup", "restore", "verify", "copy", "prune"} <= {j.name for j in build_definitions().resolve_all_job_defs()}


def test_freshness_check_runs_in_dagster(root):
    from skillswap_backup.definitions import build_definitions

    check_key = dg.AssetCheckKey(SNAPSHOTS_KEY, FRESHNESS_CHECK)
    job = dg.define_asset_job("freshness_only", selection=dg.AssetSelection.checks(check_key))
    with environment(BACKUP_ROOT=str(root)):
        defs = dg.Definitions.merge(build_definitions(), dg.Definitions(jobs=[job]))
        with dg.instance_for_test() as instance:
            result = defs.resolve_job_def("freshness_only").execute_in_process(instance=instance)
    (evaluation,) = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    # The copied snapshot finished minutes ago (real clock): fresh.
    assert evaluation.passed and evaluation.description.startswith(f"fresh: newest snapshot {KEY}")


def test_expiry_check_runs_in_dagster_and_fails_loudly_inside_the_window(root):
    from skillswap_backup.definitions import build_definitions

    check_key = dg.AssetCheckKey(SNAPSHOTS_KEY, EXPIRY_CHECK)
    job = dg.define_asset_job("expiry_only", selection=dg.AssetSelection.checks(check_key))
    today = datetime.now(timezone.utc).date()
    expires = (today + timedelta(days=4)).isoformat()
    with environment(BACKUP_ROOT=str(root), SOURCE_EXPIRES_ON=expires, EXPIRY_WARN_DAYS="7"):
        defs = dg.Definitions.merge(build_definitions(), dg.Definitions(jobs=[job]))
        with dg.instance_for_test() as instance:
            result = defs.resolve_job_def("expiry_only").execute_in_process(instance=instance, raise_on_error=False)
    (evaluation,) = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert any(
        f"SOURCE DATABASE EXPIRES IN {n} DAYS" in evaluation.description
        for n in _days_left_since(today, today + timedelta(days=4))
    )
