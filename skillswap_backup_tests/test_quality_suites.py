"""Data-quality suites on real Parquet files, a real PostgreSQL database and real Dagster runs.

A small catalog (users, skills, a compound-key mapping table, swap requests and ratings) is
written as Parquet snapshots; each test breaks one rule and checks the failing family names the
offending keys, while every other family still passes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skillswap_backup.defs.quality import ChecksUnavailable, build_table_checks
from skillswap_backup.lib.catalog import Catalog, CheckConstraint, Column, ForeignKey, Table
from skillswap_backup.lib.quality import (
    FAMILIES,
    ParquetDirReader,
    build_data_docs,
    plan_table,
    restorable,
    results_from_json,
    results_to_json,
    text_summary,
    validate_database,
    validate_snapshot,
)
from skillswap_backup_tests.pgtools import scratch_database


def col(name, pg_type="integer", *, not_null=False, kind="b", enum=()):
    return Column(
        name=name, pg_type=pg_type, base_type=pg_type, type_kind=kind, is_array=False, not_null=not_null,
        enum_values=tuple(enum),
    )


USERS = Table(
    "public", "users",
    (
        col("id", not_null=True),
        col("email", "text", not_null=True),
        col("role", "public.user_role", not_null=True, kind="e", enum=("user", "admin")),
        col("rating", "numeric(3,2)"),
    ),
    primary_key=("id",),
    unique_keys=(("email",),),
    checks=(CheckConstraint("users_rating_check", "CHECK (((rating >= (0)::numeric) AND (rating <= (5)::numeric)))"),),
    tier="critical",
)
SKILLS = Table(
    "public", "skills",
    (col("id", not_null=True), col("name", "character varying(80)", not_null=True), col("category", "text")),
    primary_key=("id",),
    checks=(
        CheckConstraint(
            "skills_category_check",
            "CHECK (((category)::text = ANY ((ARRAY['tech'::character varying, 'art'::character varying])::text[])))",
        ),
    ),
    tier="critical",
)
USER_SKILLS = Table(
    "public", "user_skills_offered",
    (col("user_id", not_null=True), col("skill_id", not_null=True), col("level", "smallint")),
    primary_key=("user_id", "skill_id"),
    foreign_keys=(
        ForeignKey("user_skills_offered_user_id_fkey", ("user_id",), "public", "users", ("id",)),
        ForeignKey("user_skills_offered_skill_id_fkey", ("skill_id",), "public", "skills", ("id",)),
    ),
    tier="critical",
)
SWAP_REQUESTS = Table(
    "public", "swap_requests",
    (
        col("id", not_null=True),
        col("requester_id", not_null=True),
        col("offered_skill_id", not_null=True),
        col("status", "text", not_null=True),
    ),
    primary_key=("id",),
    foreign_keys=(
        # Composite: the requester must offer the skill.
        ForeignKey(
            "swap_requests_offer_fkey", ("requester_id", "offered_skill_id"),
            "public", "user_skills_offered", ("user_id", "skill_id"),
        ),
    ),
    checks=(
        CheckConstraint(
            "swap_requests_status_check",
            "CHECK ((status = ANY (ARRAY['pending'::text, 'accepted'::text, 'declined'::text])))",
        ),
        CheckConstraint("swap_requests_not_self", "CHECK ((requester_id <> offered_skill_id))"),
    ),
    tier="important",
)
SWAP_RATINGS = Table(
    "public", "swap_ratings",
    (
        col("id", not_null=True),
        col("swap_request_id", not_null=True),
        col("rater_id", not_null=True),
        col("rating", not_null=True),
        col("comment", "text"),
    ),
    primary_key=("id",),
    foreign_keys=(
        ForeignKey("swap_ratings_swap_request_id_fkey", ("swap_request_id",), "public", "swap_requests", ("id",)),
        ForeignKey("swap_ratings_rater_id_fkey", ("rater_id",), "public", "users", ("id",)),
    ),
    checks=(CheckConstraint("swap_ratings_rating_check", "CHECK (((rating >= 1) AND (rating <= 5)))"),),
    tier="important",
)
CATALOG = Catalog("skillswap", "15.0", "2026-01-04T00:00:00Z", (USERS, SKILLS, USER_SKILLS, SWAP_REQUESTS, SWAP_RATINGS))

I32 = pa.int32()


def clean_data() -> dict[str, pa.Table]:
    return {
        "public.users": pa.table({
            "id": pa.array([1, 2, 3, 4], I32),
            "email": ["ana@example.com", "ben@example.com", "cy@example.com", "dee@example.com"],
            "role": ["admin", "user", "user", "user"],
            "rating": ["4.50", "3.00", None, "5.00"],  # numeric is stored as PostgreSQL text
        }),
        "public.skills": pa.table({
            "id": pa.array([10, 11, 12], I32),
            "name": ["Python", "Watercolour", "Guitar"],
            "category": ["tech", "art", None],
        }),
        "public.user_skills_offered": pa.table({
            "user_id": pa.array([1, 1, 2, 3], I32),
            "skill_id": pa.array([10, 11, 11, 12], I32),
            "level": pa.array([3, None, 2, 1], pa.int16()),
        }),
        "public.swap_requests": pa.table({
            "id": pa.array([100, 101, 102], I32),
            "requester_id": pa.array([1, 2, 3], I32),
            "offered_skill_id": pa.array([10, 11, 12], I32),
            "status": ["pending", "accepted", "declined"],
        }),
        "public.swap_ratings": pa.table({
            "id": pa.array([1000, 1001], I32),
            "swap_request_id": pa.array([101, 102], I32),
            "rater_id": pa.array([1, 3], I32),
            "rating": pa.array([5, 4], I32),
            "comment": ["great", None],
        }),
    }


def write_snapshot(folder: Path, data: dict[str, pa.Table], source_rows: dict[str, int] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for qualified, table in data.items():
        pq.write_table(table, folder / f"{CATALOG.table(qualified).file_stem}.parquet")
    counts = source_rows or {name: t.num_rows for name, t in data.items()}
    (folder / "source_rows.json").write_text(json.dumps(counts))
    return folder


def replace_row(table: pa.Table, index: int, **values) -> pa.Table:
    rows = table.to_pylist()
    rows[index] = {**rows[index], **values}
    return pa.Table.from_pylist(rows, schema=table.schema)


def append_row(table: pa.Table, **values) -> pa.Table:
    return pa.Table.from_pylist([*table.to_pylist(), values], schema=table.schema)


def validate(folder: Path) -> dict:
    return {r.table: r for r in validate_snapshot(CATALOG, ParquetDirReader(folder))}


def failures(results: dict) -> set[tuple[str, str]]:
    return {(name, family) for name, r in results.items() for family in r.failed_families()}


@pytest.fixture(scope="module")
def clean_results(tmp_path_factory):
    folder = write_snapshot(tmp_path_factory.mktemp("clean"), clean_data())
    return validate(folder)


# ---- plans (no Great Expectations involved) -------------------------------------------------------


def test_plan_families_follow_the_catalog():
    assert plan_table(USERS, CATALOG).families() == ["row_count", "primary_key", "not_null", "check_constraints"]
    assert plan_table(SWAP_RATINGS, CATALOG).families() == list(FAMILIES)
    requests = plan_table(SWAP_REQUESTS, CATALOG)
    assert [r.kind for r in requests.rules_for("check_constraints")] == ["in_set"]
    assert requests.skipped["check_constraints"] == [
        "CHECK swap_requests_not_self not checked (unsupported comparison '<>'): CHECK ((requester_id <> offered_skill_id))"
    ]
    compound = plan_table(USER_SKILLS, CATALOG).rules_for("primary_key")
    assert [(r.kind, r.columns) for r in compound] == [
        ("not_null", ("user_id",)), ("not_null", ("skill_id",)), ("compound_unique", ("user_id", "skill_id")),
    ]


# ---- snapshot validation -------------------------------------------------------------------------------


def test_clean_snapshot_passes_every_family(clean_results):
    assert set(clean_results) == {t.qualified for t in CATALOG.tables}
    assert failures(clean_results) == set()
    ratings = clean_results["public.swap_ratings"]
    assert list(ratings.families) == list(FAMILIES)
    assert (ratings.rows, ratings.source_rows) == (2, 2)
    assert ratings.families["foreign_keys"].unexpected_count == 0
    assert restorable(list(clean_results.values()))
    # The enum rule and the varchar CHECK rule both ran, as expectations in the GX result.
    configs = [r["expectation_config"] for r in clean_results["public.users"].gx_result["results"]]
    in_set = {c["kwargs"]["column"]: c["kwargs"]["value_set"] for c in configs if c["type"] == "expect_column_values_to_be_in_set"}
    assert in_set == {"(id) unique": [True], "(email) unique": [True], "role": ["user", "admin"]}
    assert "expect_column_values_to_be_between" in [c["type"] for c in configs]


def test_duplicate_primary_key_fails_and_names_the_key(tmp_path):
    data = clean_data()
    data["public.users"] = replace_row(data["public.users"], 3, id=2)  # dee gets ben's id
    results = validate(write_snapshot(tmp_path, data))
    assert failures(results) == {("public.users", "primary_key")}
    family = results["public.users"].families["primary_key"]
    assert family.unexpected_count == 2
    assert family.sample == [{"id": 2}]
    assert not restorable(list(results.values()))


def test_duplicate_compound_primary_key_fails_as_a_whole(tmp_path):
    data = clean_data()
    # (1, 11) twice; user_id 1 and skill_id 11 each repeat legitimately elsewhere.
    data["public.user_skills_offered"] = append_row(data["public.user_skills_offered"], user_id=1, skill_id=11, level=5)
    results = validate(write_snapshot(tmp_path, data))
    assert failures(results) == {("public.user_skills_offered", "primary_key")}
    family = results["public.user_skills_offered"].families["primary_key"]
    assert family.unexpected_count == 2
    assert family.sample == [{"user_id": 1, "skill_id": 11}]


def test_orphan_foreign_key_fails_and_names_the_child_keys(tmp_path):
    data = clean_data()
    data["public.swap_ratings"] = replace_row(data["public.swap_ratings"], 1, rater_id=99)
    results = validate(write_snapshot(tmp_path, data))
    assert failures(results) == {("public.swap_ratings", "foreign_keys")}
    family = results["public.swap_ratings"].families["foreign_keys"]
    assert family.unexpected_count == 1
    assert family.sample == [{"id": 1001, "rater_id": 99}]
    assert "swap_ratings_rater_id_fkey: 1 orphan row(s)" in family.observed
    # The other foreign key of the same table still passed, rule by rule.
    assert [r.passed for r in family.rules] == [True, False]
    # Never a parent key set in the suite: the FK expectation is over a derived boolean column.
    fk_configs = [
        r["expectation_config"] for r in results["public.swap_ratings"].gx_result["results"]
        if r["expectation_config"]["meta"]["family"] == "foreign_keys"
    ]
    assert all(c["kwargs"]["value_set"] == [True] for c in fk_configs)


def test_orphan_composite_foreign_key(tmp_path):
    data = clean_data()
    # Ben (2) offers skill 11 but not 10: the pair (2, 10) has no parent, though each half exists.
    data["public.swap_requests"] = replace_row(data["public.swap_requests"], 1, offered_skill_id=10)
    results = validate(write_snapshot(tmp_path, data))
    assert failures(results) == {("public.swap_requests", "foreign_keys")}
    assert results["public.swap_requests"].families["foreign_keys"].sample == [
        {"id": 101, "requester_id": 2, "offered_skill_id": 10}
    ]


def test_null_in_not_null_column_fails(tmp_path):
    data = clean_data()
    data["public.skills"] = replace_row(data["public.skills"], 2, name=None)
    results = validate(write_snapshot(tmp_path, data))
    assert failures(results) == {("public.skills", "not_null")}
    family = results["public.skills"].families["not_null"]
    assert family.unexpected_count == 1
    assert family.sample == [{"id": 12, "name": None}]
    assert not family.blocking
    assert restorable(list(results.values()))  # a warning: the snapshot is still restorable


def test_rating_out_of_check_range_fails(tmp_path):
    data = clean_data()
    data["public.swap_ratings"] = replace_row(data["public.swap_ratings"], 0, rating=9)
    results = validate(write_snapshot(tmp_path, data))
    assert failures(results) == {("public.swap_ratings", "check_constraints")}
    family = results["public.swap_ratings"].families["check_constraints"]
    assert family.sample == [{"id": 1000, "rating": 9}]
    assert "1 <= rating <= 5" in family.expected


def test_value_sets_from_checks_and_enums(tmp_path):
    data = clean_data()
    data["public.users"] = replace_row(data["public.users"], 0, role="root", rating="7.25")
    data["public.skills"] = replace_row(data["public.skills"], 0, category="cooking")
    results = validate(write_snapshot(tmp_path, data))
    assert failures(results) == {("public.users", "check_constraints"), ("public.skills", "check_constraints")}
    assert results["public.users"].families["check_constraints"].sample == [{"id": 1, "rating": 7.25}, {"id": 1, "role": "root"}]
    assert results["public.skills"].families["check_constraints"].sample == [{"id": 10, "category": "cooking"}]


def test_removed_row_fails_the_row_count(tmp_path):
    data = clean_data()
    data["public.swap_requests"] = data["public.swap_requests"].slice(0, 2)
    results = validate(write_snapshot(tmp_path, data, source_rows={n: t.num_rows for n, t in clean_data().items()}))
    # The removed request (102) was the parent of rating 1001: the FK check sees that too.
    assert failures(results) == {("public.swap_requests", "row_count"), ("public.swap_ratings", "foreign_keys")}
    family = results["public.swap_requests"].families["row_count"]
    assert (family.expected, family.observed, family.unexpected_count) == (
        "3 rows (count(*) in the source snapshot)", "2 rows in the snapshot", 1,
    )
    assert results["public.swap_ratings"].families["foreign_keys"].sample == [{"id": 1001, "swap_request_id": 102}]


def test_missing_table_file_is_a_named_failure(tmp_path):
    data = clean_data()
    folder = write_snapshot(tmp_path, data)
    (folder / "skills.parquet").unlink()
    results = validate(folder)
    skills = results["public.skills"]
    assert "no Parquet data for table public.skills" in skills.error
    assert set(skills.failed_families()) == {"row_count", "primary_key", "not_null", "check_constraints"}
    # Children reading skills as a parent fail too, instead of passing vacuously.
    assert results["public.user_skills_offered"].error


def test_results_round_trip_and_text_summary(tmp_path):
    data = clean_data()
    data["public.swap_ratings"] = replace_row(data["public.swap_ratings"], 1, rater_id=99, rating=9)
    results = validate_snapshot(CATALOG, ParquetDirReader(write_snapshot(tmp_path, data)))
    again = results_from_json(results_to_json(results))
    assert [r.to_dict() for r in again] == [r.to_dict() for r in results]
    summary = text_summary(again)
    assert summary.splitlines()[0] == "Data quality: 5 tables, 21 checks, 19 passed, 2 failed (1 blocking)"
    assert "public.swap_ratings" in summary and "FAILED" in summary
    assert 'offending keys: {"id": 1001, "rater_id": 99}' in summary
    assert "foreign_keys FAILED (blocking)" in summary
    assert "check_constraints FAILED (warning)" in summary
    assert "note: CHECK swap_requests_not_self not checked" in summary


def test_data_docs_name_every_table(tmp_path, clean_results):
    index = build_data_docs(list(clean_results.values()), tmp_path / "reports", run_name="2026-01-04")
    assert index == (tmp_path / "reports" / "index.html").resolve()
    html = index.read_text()
    for table in CATALOG.tables:
        assert table.qualified in html
    pages = list((tmp_path / "reports" / "validations").rglob("*.html"))
    assert len(pages) == len(CATALOG.tables)
    ratings_page = next(p for p in pages if "swap_ratings" in str(p)).read_text()
    assert "every non-null (rater_id) exists in public.users(id)" in ratings_page


# ---- a live database (the restore target) ---------------------------------------------------------------

DDL = """
CREATE TYPE user_role AS ENUM ('user', 'admin');
CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL UNIQUE, role user_role NOT NULL,
                    rating numeric(3,2) CHECK (rating >= 0 AND rating <= 5));
CREATE TABLE skills (id integer PRIMARY KEY, name varchar(80) NOT NULL,
                     category varchar(20) CHECK (category IN ('tech', 'art')));
CREATE TABLE user_skills_offered (user_id integer NOT NULL REFERENCES users(id), skill_id integer NOT NULL REFERENCES skills(id),
                                  level smallint, PRIMARY KEY (user_id, skill_id));
CREATE TABLE swap_requests (id integer PRIMARY KEY, requester_id integer NOT NULL, offered_skill_id integer NOT NULL,
                            status text NOT NULL CHECK (status IN ('pending', 'accepted', 'declined')),
                            CONSTRAINT swap_requests_offer_fkey FOREIGN KEY (requester_id, offered_skill_id)
                              REFERENCES user_skills_offered(user_id, skill_id));
CREATE TABLE swap_ratings (id integer PRIMARY KEY, swap_request_id integer NOT NULL,
                           rater_id integer NOT NULL REFERENCES users(id),
                           rating integer NOT NULL CHECK (rating >= 1 AND rating <= 5), comment text);
"""


def load(conn: psycopg.Connection, data: dict[str, pa.Table]) -> None:
    for table in CATALOG.tables:
        frame = data[table.qualified]
        names = ", ".join(frame.column_names)
        marks = ", ".join(["%s"] * frame.num_columns)
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {table.name} ({names}) VALUES ({marks})",  # test-only fixed names
                [tuple(row.values()) for row in frame.to_pylist()],
            )


def test_live_database_validation_and_tampering():
    data = clean_data()
    expected = {name: t.num_rows for name, t in data.items()}
    with scratch_database("ssb_test_q") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(DDL)
            load(conn, data)
        results = {r.table: r for r in validate_database(CATALOG, url, expected_rows=expected)}
        assert failures(results) == set()
        assert results["public.users"].rows == 4

        # Tamper behind the constraints' back, as a broken restore could: drop the FK, add orphans.
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER TABLE swap_ratings DROP CONSTRAINT swap_ratings_rater_id_fkey")
            conn.execute("INSERT INTO swap_ratings VALUES (1002, 101, 42, 3, 'who?')")
        results = {r.table: r for r in validate_database(CATALOG, url, expected_rows=expected)}
        assert failures(results) == {("public.swap_ratings", "row_count"), ("public.swap_ratings", "foreign_keys")}
        ratings = results["public.swap_ratings"]
        assert (ratings.rows, ratings.source_rows) == (3, 2)
        assert ratings.families["foreign_keys"].sample == [{"id": 1002, "rater_id": 42}]


# ---- Dagster: partitioned asset checks in real runs ---------------------------------------------------

PARTITIONS = dg.WeeklyPartitionsDefinition(start_date="2026-01-04")


def _dagster_defs(root: Path, snapshots: dict[str, dict[str, pa.Table]]):
    """Trivial partitioned table assets that write the partition's Parquet, plus our checks."""

    def table_asset(table: Table) -> dg.AssetsDefinition:
        @dg.asset(key=dg.AssetKey(table.asset_path), partitions_def=PARTITIONS)
        def _asset(context) -> dg.MaterializeResult:
            data = snapshots[context.partition_key]
            folder = root / context.partition_key
            write_snapshot(folder, {table.qualified: data[table.qualified]})
            counts = {n: t.num_rows for n, t in clean_data().items()}
            (folder / "source_rows.json").write_text(json.dumps(counts))
            return dg.MaterializeResult(metadata={"dagster/row_count": data[table.qualified].num_rows})

        return _asset

    assets = [table_asset(t) for t in CATALOG.tables]
    checks = build_table_checks(
        CATALOG,
        partitions_def=PARTITIONS,
        reader_for=lambda context: ParquetDirReader(root / context.partition_key),
    )
    return assets, checks


def test_dagster_checks_run_per_partition(tmp_path):
    good, bad = "2026-01-04", "2026-01-11"
    broken = clean_data()
    broken["public.swap_ratings"] = replace_row(broken["public.swap_ratings"], 1, rater_id=99)
    broken["public.skills"] = replace_row(broken["public.skills"], 0, name=None)
    assets, checks = _dagster_defs(tmp_path, {good: clean_data(), bad: broken})
    assert len(checks) == 1
    specs = list(checks[0].check_specs)
    assert len(specs) == 21  # one per family per table, only families with something to check
    by_key = {(s.asset_key.path[-1], s.name): s for s in specs}
    assert by_key[("swap_ratings", "foreign_keys")].blocking
    assert not by_key[("skills", "not_null")].blocking
    assert by_key[("swap_ratings", "foreign_keys")].partitions_def == PARTITIONS
    assert all(s.description for s in specs)
    dg.Definitions(assets=assets, asset_checks=checks).resolve_all_job_defs()

    with dg.instance_for_test() as instance:
        run = dg.materialize([*assets, *checks], partition_key=good, instance=instance)
        evaluations = run.get_asset_check_evaluations()
        assert len(evaluations) == 21
        assert all(e.passed for e in evaluations)
        assert {e.partition for e in evaluations} == {good}

        run = dg.materialize([*assets, *checks], partition_key=bad, instance=instance, raise_on_error=False)
        assert not run.success  # a blocking check failed with ERROR severity
        evaluations = {(e.asset_key.path[-1], e.check_name): e for e in run.get_asset_check_evaluations()}
        assert len(evaluations) == 21
        failed = {k for k, e in evaluations.items() if not e.passed}
        assert failed == {("swap_ratings", "foreign_keys"), ("skills", "not_null")}
        fk = evaluations[("swap_ratings", "foreign_keys")]
        assert fk.severity == dg.AssetCheckSeverity.ERROR
        assert fk.partition == bad
        assert fk.metadata["offending_keys"].value == [{"id": 1001, "rater_id": 99}]
        assert fk.metadata["unexpected_count"].value == 1
        assert "swap_ratings_rater_id_fkey: 1 orphan row(s)" in fk.metadata["observed"].value
        assert evaluations[("skills", "not_null")].severity == dg.AssetCheckSeverity.WARN
        counts = evaluations[("swap_requests", "row_count")].metadata
        assert (counts["rows"].value, counts["source_rows"].value) == (3, 3)

        # Results are recorded per partition: the good partition's check stays passed.
        key = dg.AssetCheckKey(dg.AssetKey(SWAP_RATINGS.asset_path), "foreign_keys")
        records = instance.event_log_storage.get_asset_check_execution_history(key, limit=10)
        assert len(records) == 2


def test_dagster_runs_only_the_checks_of_one_table_for_a_partition(tmp_path):
    partition = "2026-01-04"
    assets, checks = _dagster_defs(tmp_path, {partition: clean_data()})
    job = dg.define_asset_job("snapshot", selection=dg.AssetSelection.all())
    defs = dg.Definitions(assets=assets, asset_checks=checks, jobs=[job])
    users = dg.AssetKey(USERS.asset_path)
    wanted = {dg.AssetCheckKey(users, name) for name in ("row_count", "primary_key")}
    with dg.instance_for_test() as instance:
        dg.materialize(assets, partition_key=partition, instance=instance)
        # As the UI's "execute checks" does: a subset of a partitioned job, with no asset selected.
        # (In Dagster 1.13 a job selecting *only* partitioned checks has no PartitionsDefinition.)
        subset = defs.resolve_job_def("snapshot").get_subset(asset_selection=set(), asset_check_selection=wanted)
        result = subset.execute_in_process(instance=instance, partition_key=partition)
        evaluations = result.get_asset_check_evaluations()
        assert {e.asset_check_key for e in evaluations} == wanted
        assert all(e.passed and e.partition == partition for e in evaluations)
        assert not result.get_asset_materialization_events()


def test_dagster_checks_when_the_snapshot_cannot_be_read(tmp_path):
    partition = "2026-01-04"
    assets, _ = _dagster_defs(tmp_path, {partition: clean_data()})

    def missing(context):
        raise FileNotFoundError(f"no snapshot folder for {context.partition_key}")

    def locked(context):
        raise ChecksUnavailable("the snapshot is encrypted and this run has no key to read it")

    with dg.instance_for_test() as instance:
        checks = build_table_checks(CATALOG, partitions_def=PARTITIONS, reader_for=missing)
        run = dg.materialize([*assets, *checks], partition_key=partition, instance=instance, raise_on_error=False)
        assert not run.success
        evaluations = run.get_asset_check_evaluations()
        assert len(evaluations) == 21 and not any(e.passed for e in evaluations)
        assert all("no snapshot folder for 2026-01-04" in e.metadata["error"].value for e in evaluations)

        checks = build_table_checks(CATALOG, partitions_def=PARTITIONS, reader_for=locked)
        run = dg.materialize([*assets, *checks], partition_key=partition, instance=instance)
        assert run.success and run.get_asset_check_evaluations() == []


def test_loading_the_checks_does_not_import_great_expectations():
    code = (
        "import sys\n"
        "from skillswap_backup.defs.quality import build_table_checks\n"
        "import skillswap_backup.lib.quality\n"
        "print('great_expectations' in sys.modules, 'pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_text_keys_are_hashed_but_reported_by_value(tmp_path):
    """Text keys reach GX as 64-bit hashes (and unique rules as flags computed from them); samples
    still name the real values, read back."""
    devices = Table(
        "app", "devices",
        (col("serial", "text", not_null=True), col("owner_email", "text"), col("slot", "text"), col("rack", "integer")),
        primary_key=("serial",),
        unique_keys=(("owner_email",), ("slot", "rack")),
    )
    catalog = Catalog("x", "15", "now", (devices,))
    data = pa.table({
        "serial": ["A-1", "A-2", "A-2", "A-4"],
        "owner_email": ["x@example.com", "y@example.com", None, "x@example.com"],
        "slot": ["s1", "s1", "s2", None],
        "rack": pa.array([1, 1, 2, 1], I32),
    })
    pq.write_table(data, tmp_path / f"{devices.file_stem}.parquet")
    (result,) = validate_snapshot(catalog, ParquetDirReader(tmp_path, {"app.devices": 4}))
    family = result.families["primary_key"]
    assert [r.passed for r in family.rules] == [True, False, False, False]
    assert family.sample == [
        {"serial": "A-2"},
        {"serial": "A-1", "owner_email": "x@example.com"},
        {"serial": "A-4", "owner_email": "x@example.com"},
        {"serial": "A-1", "slot": "s1", "rack": 1},
        {"serial": "A-2", "slot": "s1", "rack": 1},
    ]
    columns = [r["expectation_config"]["kwargs"].get("column") for r in result.gx_result["results"]]
    assert "serial (hash)" in columns and "(owner_email) unique" in columns and "owner_email" not in columns


def test_uniqueness_flags_follow_primary_and_unique_key_null_rules():
    import pandas as pd

    from skillswap_backup.lib.quality.frames import uniqueness

    df = pd.DataFrame({"a": pd.array([1, 1, None, None, 2, 3], "Int64"), "b": pd.array([5, 5, 7, 7, None, None], "Int64")})
    # UNIQUE (a, b), as PostgreSQL judges it: a key with a NULL part never conflicts.
    assert uniqueness(df, ["a", "b"], any_missing_exempts=True).tolist() == [False, False, True, True, True, True]
    # Only an all-NULL key is exempt otherwise: NULL parts compare equal.
    assert uniqueness(df, ["a", "b"], any_missing_exempts=False).tolist() == [False, False, False, False, True, True]
    assert uniqueness(df, ["a"], any_missing_exempts=True).tolist() == [False, False, True, True, True, True]
    hashed = pd.DataFrame({"h": pd.util.hash_array(pd.array(["x", "y", "x"], dtype=object).to_numpy()).view("int64")})
    assert uniqueness(hashed, ["h"], any_missing_exempts=True).tolist() == [False, True, False]


def test_integer_foreign_keys_are_looked_up_in_the_sorted_parent_keys():
    from skillswap_backup.lib.quality.frames import parent_exists

    child = pa.table({"parent_id": pa.array([1, 4, None, 3, -7], pa.int32())})
    parent = pa.table({"id": pa.array([3, None, 1, 2], pa.int64())})
    assert parent_exists(child, parent).tolist() == [True, False, True, True, False]
    assert parent_exists(child, parent.slice(0, 0)).tolist() == [False, False, True, False, False]


def test_a_table_whose_validation_process_fails_is_reported_failed_with_the_reason():
    from skillswap_backup.lib.quality import worker
    from skillswap_backup.lib.quality.suites import QualityValidator

    class Exhausted(QualityValidator):
        def validate_table(self, table, reader):
            raise MemoryError("cannot allocate")

    table = CATALOG.tables[0]
    result = worker._validate_forked(Exhausted(CATALOG), table, reader=None)
    assert result.table == table.qualified and not result.passed
    assert result.error == "MemoryError: cannot allocate" and result.families
    assert all(not f.passed and "MemoryError" in f.observed for f in result.families.values())


def test_data_docs_compile_each_template_once_per_process(tmp_path, clean_results, monkeypatch):
    """GX renders each part of the site in a Jinja environment of its own; they share compiled
    templates, so a template is compiled at most once, and a second build compiles none."""
    import jinja2

    compiled: list[str] = []
    compile_template = jinja2.Environment.compile

    def counting(self, source, name=None, *args, **kwargs):
        compiled.append(name)
        return compile_template(self, source, name, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    build_data_docs(list(clean_results.values()), tmp_path / "first", run_name="2026-01-04")
    first = list(compiled)
    build_data_docs(list(clean_results.values()), tmp_path / "second", run_name="2026-01-04")
    assert len(first) == len(set(first))
    assert compiled == first
    assert (tmp_path / "second" / "index.html").read_text().count("public.") >= len(CATALOG.tables)


def test_expectation_configurations_built_once_per_run_change_no_result(tmp_path, monkeypatch):
    """GX reads each expectation's configuration ~100 times per validation; inside a run it is
    built once. Validating with and without that gives the same results, failures included."""
    import contextlib

    from skillswap_backup.lib.quality import suites

    data = clean_data()
    data["public.users"] = replace_row(data["public.users"], 3, id=2, rating="9.00")
    data["public.swap_ratings"] = replace_row(data["public.swap_ratings"], 1, rater_id=99, rating=0)
    folder = write_snapshot(tmp_path, data)

    def outcome(results: dict) -> dict:
        return {
            name: (
                r.families,
                # Every run gives each expectation a new random id: the rest must be equal.
                [
                    ({k: v for k, v in item["expectation_config"].items() if k != "id"}, item["success"], item["result"])
                    for item in r.gx_result["results"]
                ],
            )
            for name, r in results.items()
        }

    once = outcome(validate(folder))
    built = []
    monkeypatch.setattr(suites, "_configurations_once", lambda: contextlib.nullcontext(built.append(1)))
    every_time = outcome(validate(folder))
    assert len(built) == len(CATALOG.tables)  # the unmemoized path did run
    assert once == every_time
    assert failures(validate(folder)) == {
        ("public.users", "primary_key"), ("public.users", "check_constraints"),
        ("public.swap_ratings", "foreign_keys"), ("public.swap_ratings", "check_constraints"),
    }


def test_tables_validated_in_windows_give_the_same_verdicts_counts_and_samples(tmp_path, monkeypatch):
    """A table (or foreign-key parent) above the window size is validated a window of rows at a
    time, its keys checked in hash partitions: every family must come out as in one frame,
    violations that span windows included."""
    from skillswap_backup.lib.quality import suites

    data = clean_data()
    data["public.users"] = replace_row(data["public.users"], 3, id=2, rating="9.00")  # rows 1 and 3: two windows
    data["public.users"] = replace_row(data["public.users"], 0, email=None)
    data["public.skills"] = replace_row(data["public.skills"], 2, name=None)
    data["public.user_skills_offered"] = append_row(data["public.user_skills_offered"], user_id=1, skill_id=11, level=5)
    data["public.swap_requests"] = replace_row(data["public.swap_requests"], 1, offered_skill_id=10, status="lost")
    data["public.swap_ratings"] = replace_row(data["public.swap_ratings"], 1, rater_id=99, rating=0)
    folder = write_snapshot(tmp_path, data)

    whole = validate(folder)
    runs = []
    run_suite = suites._run_suite
    monkeypatch.setattr(suites, "_run_suite", lambda *args: runs.append(1) or run_suite(*args))
    windowed = {r.table: r for r in validate_snapshot(CATALOG, ParquetDirReader(folder), window_rows=2)}
    # Windows of two rows: the 4-5 row tables take two or three windows each, plus their row count.
    assert len(runs) > 2 * len(CATALOG.tables)
    assert failures(windowed) == failures(whole) == {
        ("public.users", "primary_key"), ("public.users", "check_constraints"), ("public.users", "not_null"),
        ("public.skills", "not_null"), ("public.user_skills_offered", "primary_key"),
        ("public.swap_requests", "foreign_keys"), ("public.swap_requests", "check_constraints"),
        ("public.swap_ratings", "foreign_keys"), ("public.swap_ratings", "check_constraints"),
    }
    for name, result in whole.items():
        assert windowed[name].rows == result.rows
        for family, outcome in result.families.items():
            other = windowed[name].families[family]
            assert (other.passed, other.observed, other.unexpected_count, other.sample) == (
                outcome.passed, outcome.observed, outcome.unexpected_count, outcome.sample,
            ), (name, family)
    assert windowed["public.users"].families["primary_key"].sample == [{"id": 2}]


def test_an_empty_table_whose_parent_is_validated_in_windows_passes(tmp_path):
    data = clean_data()
    data["public.swap_ratings"] = data["public.swap_ratings"].slice(0, 0)
    windowed = {r.table: r for r in validate_snapshot(CATALOG, ParquetDirReader(write_snapshot(tmp_path, data)), window_rows=2)}
    ratings = windowed["public.swap_ratings"]
    assert (ratings.rows, ratings.failed_families()) == (0, [])
    assert set(ratings.families) == {"row_count", "primary_key", "not_null", "check_constraints", "foreign_keys"}
