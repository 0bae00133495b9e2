"""The demo seeder on a real server: seed counts, valid keys, a working login, scale, determinism."""

from __future__ import annotations

import re

import bcrypt
import psycopg
import pytest
from psycopg import sql

from skillswap_backup.lib.demo_db import (
    DEMO_ADMIN_EMAIL,
    DEMO_COUNTS,
    DEMO_USER_EMAIL,
    DEMO_USER_PASSWORD,
    DRIZZLE_MIGRATIONS,
    create_demo_database,
)
from skillswap_backup_tests.pgtools import admin_url, database_name, scratch_database

ALL_TABLES = [("public", table) for table in DEMO_COUNTS] + [("drizzle", "__drizzle_migrations")]

EXPECTED_FOREIGN_KEYS = {
    ("user_skills_offered", "user_id", "users"),
    ("user_skills_offered", "skill_id", "skills"),
    ("user_skills_wanted", "user_id", "users"),
    ("user_skills_wanted", "skill_id", "skills"),
    ("swap_requests", "requester_id", "users"),
    ("swap_requests", "recipient_id", "users"),
    ("swap_requests", "offered_skill_id", "skills"),
    ("swap_requests", "wanted_skill_id", "skills"),
    ("swap_ratings", "swap_request_id", "swap_requests"),
    ("swap_ratings", "rater_id", "users"),
    ("swap_ratings", "rated_user_id", "users"),
    ("notifications", "user_id", "users"),
    ("conversations", "participant1_id", "users"),
    ("conversations", "participant2_id", "users"),
    ("conversations", "swap_request_id", "swap_requests"),
    ("messages", "conversation_id", "conversations"),
    ("messages", "sender_id", "users"),
}

FOREIGN_KEYS_SQL = """
SELECT child.relname, col.attname, parent.relname, parent_col.attname, c.confdeltype, c.convalidated,
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1])
FROM pg_constraint c
JOIN pg_class child ON child.oid = c.conrelid
JOIN pg_class parent ON parent.oid = c.confrelid
JOIN pg_attribute col ON col.attrelid = c.conrelid AND col.attnum = c.conkey[1]
JOIN pg_attribute parent_col ON parent_col.attrelid = c.confrelid AND parent_col.attnum = c.confkey[1]
WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace AND cardinality(c.conkey) = 1
"""


@pytest.fixture(scope="module")
def demo() -> tuple[str, dict[str, int]]:
    with scratch_database("ssb_test_demo") as url:
        yield url, create_demo_database(admin_url(), database_name(url))


def _counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {
            f"{schema}.{table}" if schema != "public" else table: conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
            ).fetchone()[0]
            for schema, table in ALL_TABLES
        }


def _fingerprints(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return {
            table: conn.execute(
                sql.SQL("SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM {} t").format(
                    sql.Identifier(schema, table)
                )
            ).fetchone()[0]
            for schema, table in ALL_TABLES
        }


def _assert_keys_valid(url: str) -> None:
    """Every foreign key exists, cascades, is indexed, and no row points at a missing parent."""
    with psycopg.connect(url) as conn:
        keys = conn.execute(FOREIGN_KEYS_SQL).fetchall()
        assert {(child, column, parent) for child, column, parent, *_ in keys} == EXPECTED_FOREIGN_KEYS
        for child, column, parent, parent_column, on_delete, validated, indexed in keys:
            assert (on_delete, validated, indexed) == ("c", True, True), (child, column)
            orphans = conn.execute(
                sql.SQL(
                    "SELECT count(*) FROM {child} c WHERE c.{col} IS NOT NULL"
                    " AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.{pcol} = c.{col})"
                ).format(
                    child=sql.Identifier(child), col=sql.Identifier(column),
                    parent=sql.Identifier(parent), pcol=sql.Identifier(parent_column),
                )
            ).fetchone()[0]
            assert orphans == 0, (child, column)
        # Ratings come from completed swaps, by one party about the other.
        inconsistent, rated = conn.execute(
            """
            SELECT count(*) FILTER (WHERE s.status <> 'completed' OR r.rater_id = r.rated_user_id
                   OR NOT ARRAY[r.rater_id, r.rated_user_id] <@ ARRAY[s.requester_id, s.recipient_id]),
                   count(*)
            FROM swap_ratings r JOIN swap_requests s ON s.id = r.swap_request_id
            """
        ).fetchone()
        assert (inconsistent, rated) == (0, conn.execute("SELECT count(*) FROM swap_ratings").fetchone()[0])


def test_seed_counts_are_the_apps():
    assert sum(DEMO_COUNTS.values()) == 274
    assert DEMO_COUNTS["messages"] == DEMO_COUNTS["conversations"] == 0


def test_returned_and_actual_counts_match_the_seed(demo):
    url, returned = demo
    expected = {**DEMO_COUNTS, DRIZZLE_MIGRATIONS: 3}
    assert returned == expected
    assert _counts(url) == expected


def test_foreign_keys_cascade_are_indexed_and_have_no_orphans(demo):
    _assert_keys_valid(demo[0])


def test_unique_constraints_and_status_check(demo):
    with psycopg.connect(demo[0]) as conn:
        uniques = {
            (table, columns)
            for table, columns in conn.execute(
                """
                SELECT c.conrelid::regclass::text, string_agg(a.attname, ',' ORDER BY k.n)
                FROM pg_constraint c, unnest(c.conkey) WITH ORDINALITY k(attnum, n), pg_attribute a
                WHERE c.contype = 'u' AND c.connamespace = 'public'::regnamespace
                  AND a.attrelid = c.conrelid AND a.attnum = k.attnum
                GROUP BY c.oid, c.conrelid
                """
            )
        }
        assert uniques == {
            ("users", "email"),
            ("skills", "name"),
            ("user_skills_offered", "user_id,skill_id"),
            ("user_skills_wanted", "user_id,skill_id"),
            ("swap_ratings", "swap_request_id,rater_id"),
        }
        with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
            conn.execute("UPDATE swap_requests SET status = 'lost' WHERE id = 1")


def test_password_hashes_are_bcrypt_and_the_demo_login_verifies(demo):
    with psycopg.connect(demo[0]) as conn:
        hashes = dict(conn.execute("SELECT email, password FROM users").fetchall())
        admins = conn.execute("SELECT email FROM users WHERE role = 'admin' AND is_admin").fetchall()
    assert all(re.fullmatch(r"\$2b\$10\$[./A-Za-z0-9]{53}", h) for h in hashes.values())
    demo_hash = hashes[DEMO_USER_EMAIL].encode()
    assert bcrypt.checkpw(DEMO_USER_PASSWORD.encode(), demo_hash)
    assert not bcrypt.checkpw(b"not-the-password", demo_hash)
    assert len(set(hashes.values())) == DEMO_COUNTS["users"]
    assert admins == [(DEMO_ADMIN_EMAIL,)]


def test_sequences_continue_after_the_loaded_ids(demo):
    with psycopg.connect(demo[0]) as conn:
        for schema, table in ALL_TABLES:
            sequence = conn.execute(
                """
                SELECT n.nspname, s.relname FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace
                WHERE s.oid = pg_get_serial_sequence(%s, 'id')::regclass
                """,
                [sql.Identifier(schema, table).as_string(conn)],
            ).fetchone()
            last_value, is_called = conn.execute(
                sql.SQL("SELECT last_value, is_called FROM {}").format(sql.Identifier(*sequence))
            ).fetchone()
            max_id = conn.execute(
                sql.SQL("SELECT coalesce(max(id), 0) FROM {}").format(sql.Identifier(schema, table))
            ).fetchone()[0]
            assert last_value + int(is_called) == max_id + 1, table


def test_drizzle_journal_is_shaped_as_drizzle_kit_creates_it(demo):
    with psycopg.connect(demo[0]) as conn:
        columns = conn.execute(
            """
            SELECT column_name, data_type, is_nullable, column_default
            FROM information_schema.columns
            WHERE table_schema = 'drizzle' AND table_name = '__drizzle_migrations'
            ORDER BY ordinal_position
            """
        ).fetchall()
        rows = conn.execute("SELECT id, hash, created_at FROM drizzle.__drizzle_migrations ORDER BY id")
        rows = rows.fetchall()
    assert columns == [
        ("id", "integer", "NO", "nextval('drizzle.__drizzle_migrations_id_seq'::regclass)"),
        ("hash", "text", "NO", None),
        ("created_at", "bigint", "YES", None),
    ]
    assert [row[0] for row in rows] == [1, 2, 3]
    assert all(re.fullmatch(r"[0-9a-f]{64}", row[1]) for row in rows)
    assert [row[2] for row in rows] == sorted(row[2] for row in rows)


def test_rebuild_is_identical_and_forces_out_open_connections(demo):
    with scratch_database("ssb_test_demo") as url:
        dbname = database_name(url)
        with psycopg.connect(url, autocommit=True) as squatter:
            squatter.execute("CREATE TABLE leftover (id int)")
            create_demo_database(admin_url(), dbname)
            with pytest.raises(psycopg.OperationalError):
                squatter.execute("SELECT 1")
        fingerprints = _fingerprints(url)
        assert fingerprints == _fingerprints(demo[0])
        assert all(fingerprints[table] for table, count in DEMO_COUNTS.items() if count)
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT to_regclass('leftover')").fetchone()[0] is None


def test_scale_multiplies_every_count_and_keeps_keys_valid():
    with scratch_database("ssb_test_demo") as url:
        returned = create_demo_database(admin_url(), database_name(url), scale=3)
        expected = {**{table: 3 * count for table, count in DEMO_COUNTS.items()}, DRIZZLE_MIGRATIONS: 3}
        assert returned == expected
        assert _counts(url) == expected
        _assert_keys_valid(url)
        with psycopg.connect(url) as conn:
            logins = conn.execute(
                "SELECT count(*) FILTER (WHERE email = %s), count(*) FILTER (WHERE is_admin) FROM users",
                [DEMO_USER_EMAIL],
            ).fetchone()
        assert logins == (1, 1)


def test_scale_must_be_positive():
    with pytest.raises(ValueError, match="scale"):
        create_demo_database(admin_url(), "ssb_test_demo_never_created", scale=0)
