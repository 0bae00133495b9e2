"""The JSON tier's sanitizing: names, values, anonymizing, joins that survive, policy files."""

from __future__ import annotations

import json
import re

import pyarrow as pa
import pytest

from skillswap_backup.lib.catalog import Catalog, Column, ForeignKey, Table
from skillswap_backup.lib.passwords import hash_password
from skillswap_backup.lib.sanitize import (
    DEFAULT_KEY,
    HASH_HEX_DIGITS,
    PolicyError,
    find_plaintext_password_columns,
    keyed_digest,
    load_policy,
    plan_table,
    snake_name,
)

BCRYPT = "$2b$10$2EMa2cLhL9NtmJMarVLggef29ZJstrlHBcGekApyOlh6k3aLBeXl6"
SCRYPT = (
    "b9e4c0458defb164feba9d9ffbec86e4ddffb2a590e4afa11b8a170fbd1512180c3a5eefbb59f1d53515369c1639cc3cf"
    "7f291109291b9082c04aebd75e4c8cb.0123456789abcdef0123456789abcdef"
)
ARGON2 = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
PBKDF2 = "pbkdf2_sha256$600000$abcdefgh$aGFzaGhhc2hoYXNoaGFzaA=="
FAKE_EMAIL = re.compile(rf"^user-[0-9a-f]{{{HASH_HEX_DIGITS}}}@example\.invalid$")


def col(name: str, pg_type: str = "text", **kwargs) -> Column:
    return Column(
        name=name, pg_type=pg_type, base_type=pg_type, type_kind="b", is_array=False, not_null=False, **kwargs
    )


def table(name: str, *columns: Column, pk=("id",), fks=(), unique=(), schema="public") -> Table:
    return Table(
        schema=schema, name=name, columns=columns, primary_key=pk, foreign_keys=fks, unique_keys=unique
    )


USERS = table(
    "users",
    col("id", "integer"),
    col("username"),
    col("email"),
    col("password"),
    col("firstName"),
    col("last_name"),
    col("location"),
    col("phone"),
    col("bio"),
    col("last_ip", "inet"),
    col("zip_code"),
    col("profile_image_url"),
    col("reset_token"),
    col("created_at", "timestamp with time zone"),
    unique=(("email",), ("username",)),
)
SWAPS = table(
    "swap_requests",
    col("id", "integer"),
    col("requester_id", "integer"),
    col("requester_email"),
    col("contact"),  # an innocent name, but a foreign key to users.email
    col("message"),
    fks=(
        ForeignKey("swap_requester_fk", ("requester_id",), "public", "users", ("id",)),
        ForeignKey("swap_contact_fk", ("contact",), "public", "users", ("email",)),
    ),
)
CATALOG = Catalog(database="skillswap", server_version="16", discovered_at="now", tables=(USERS, SWAPS))


def users_batch(count: int = 3) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            "id": pa.array(range(1, count + 1), pa.int32()),
            "username": [f"member{i}" for i in range(count)],
            "email": [f"person{i}@mail.example" for i in range(count)],
            "password": [BCRYPT] * count,
            "firstName": [f"First{i}" for i in range(count)],
            "last_name": [f"Last{i}" for i in range(count)],
            "location": ["Lisbon"] * count,
            "phone": [f"+351 91 000 {i:04d}" for i in range(count)],
            "bio": ["Teaches guitar"] * count,
            "last_ip": [f"10.0.0.{i % 250}" for i in range(count)],
            "zip_code": ["1000-001"] * count,
            "profile_image_url": ["https://img.example/p.png"] * count,
            "reset_token": ["abc123"] * count,
            "created_at": pa.array([0] * count, pa.timestamp("us", tz="UTC")),
        }
    )


@pytest.fixture
def policy():
    return load_policy(environ={})


def test_default_policy_drops_secrets_by_name_and_keeps_the_rest(policy):
    plan = plan_table(USERS, policy, anonymize=False)
    assert not plan.excluded
    assert sorted(plan.dropped) == ["password", "reset_token"]
    assert plan.transformed == {}
    out = plan.apply(users_batch())
    assert out.schema.names == [n for n in users_batch().schema.names if n not in ("password", "reset_token")]
    assert out.column("email").to_pylist() == [
        "person0@mail.example",
        "person1@mail.example",
        "person2@mail.example",
    ]
    assert "password" in plan.reasons["password"]


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "passwordHash",
        "password_hash",
        "hashed_password",
        "passwd",
        "admin_password",
        "apiKey",
        "stripe_api_key",
        "client_secret",
        "secret",
        "salt",
        "access_token",
        "refreshToken",
        "token",
        "otp",
        "totp_secret",
        "recovery_codes",
        "private_key",
    ],
)
def test_secret_column_names_are_dropped(policy, name):
    plan = plan_table(table("accounts", col("id", "integer"), col(name)), policy, anonymize=False)
    assert plan.dropped == [name]


@pytest.mark.parametrize(
    "name", ["email", "bio", "name", "token_count", "title", "status", "skill_id", "passage"]
)
def test_innocent_column_names_are_kept(policy, name):
    assert plan_table(table("things", col("id", "integer"), col(name)), policy, anonymize=False).dropped == []


@pytest.mark.parametrize(
    ("name", "schema", "excluded"),
    [
        ("session", "public", True),  # connect-pg-simple
        ("sessions", "public", True),  # Replit Auth
        ("user_sessions", "public", True),
        ("django_session", "public", True),
        ("otp_codes", "public", True),
        ("one_time_tokens", "auth", True),
        ("password_reset_tokens", "public", True),
        ("verification_tokens", "public", True),
        ("conversations", "public", False),
        ("users", "public", False),
        ("skills", "public", False),
    ],
)
def test_session_and_token_tables_are_left_out(policy, name, schema, excluded):
    plan = plan_table(table(name, col("id", "integer"), schema=schema), policy, anonymize=False)
    assert plan.excluded is excluded
    if excluded:
        assert "table matches" in plan.reasons[""]
        with pytest.raises(ValueError, match="left out of the JSON export"):
            plan.apply(pa.RecordBatch.from_pydict({"id": [1]}))


def test_anonymize_fakes_personal_data_deterministically(policy):
    plan = plan_table(USERS, policy, anonymize=True)
    assert plan.transformed == {
        "username": "fake:username",
        "email": "fake:email",
        "firstName": "fake:first_name",
        "last_name": "fake:last_name",
        "location": "fake:city",
        "phone": "fake:phone",
        "last_ip": "hash",
    }
    assert sorted(plan.dropped) == ["password", "profile_image_url", "reset_token", "zip_code"]
    out = plan.apply(users_batch()).to_pydict()
    assert all(FAKE_EMAIL.match(e) for e in out["email"])
    assert not any("person" in e for e in out["email"])
    assert all(re.fullmatch(r"\+1-\d{3}-555-01\d\d", p) for p in out["phone"])
    assert all(re.fullmatch(r"[0-9a-f]{16}", ip) for ip in out["last_ip"])
    assert not set(out["firstName"]) & {"First0", "First1", "First2"}
    assert out["bio"] == ["Teaches guitar"] * 3  # free text is not personal data by rule
    assert out["id"] == [1, 2, 3]
    again = plan_table(USERS, policy, anonymize=True).apply(users_batch()).to_pydict()
    assert again == out


def test_fake_emails_stay_unique(policy):
    plan = plan_table(USERS, policy, anonymize=True)
    emails = plan.apply(users_batch(20_000)).column("email").to_pylist()
    assert len(set(emails)) == 20_000


def test_hash_is_the_keyed_hmac_and_the_key_matters(policy):
    batch = users_batch()
    default = plan_table(USERS, policy, anonymize=True).apply(batch).column("last_ip").to_pylist()
    assert default[0] == keyed_digest(DEFAULT_KEY, "10.0.0.0").hex()[:HASH_HEX_DIGITS]
    assert policy.key_is_default
    keyed = load_policy(environ={"BACKUP_SANITIZE_KEY": "team secret"})
    assert not keyed.key_is_default
    other = plan_table(USERS, keyed, anonymize=True).apply(batch).column("last_ip").to_pylist()
    assert other[0] == keyed_digest(b"team secret", "10.0.0.0").hex()[:HASH_HEX_DIGITS]
    assert other != default
    assert "team secret" not in repr(keyed) and "team secret" not in repr(
        plan_table(USERS, keyed, anonymize=True)
    )


def test_foreign_keys_stay_joinable_after_anonymizing(policy):
    users = users_batch(5)
    swaps = pa.RecordBatch.from_pydict(
        {
            "id": pa.array([10, 11, 12], pa.int32()),
            "requester_id": pa.array([1, 3, 5], pa.int32()),
            "requester_email": ["person0@mail.example", "person2@mail.example", "person4@mail.example"],
            "contact": ["person1@mail.example", None, "person1@mail.example"],
            "message": ["hi", "hello", "hey"],
        }
    )
    swap_plan = plan_table(SWAPS, policy, anonymize=True, catalog=CATALOG)
    assert swap_plan.transformed == {"requester_email": "fake:email", "contact": "fake:email"}
    assert "references public.users.email" in swap_plan.reasons["contact"]
    clean_users = plan_table(USERS, policy, anonymize=True, catalog=CATALOG).apply(users).to_pydict()
    clean_swaps = swap_plan.apply(swaps).to_pydict()
    email_of = dict(zip(clean_users["id"], clean_users["email"], strict=True))
    assert clean_swaps["requester_id"] == [1, 3, 5]
    assert clean_swaps["requester_email"] == [email_of[1], email_of[3], email_of[5]]
    assert clean_swaps["contact"] == [email_of[2], None, email_of[2]]


def test_without_the_catalog_an_unmatched_foreign_key_name_is_not_followed(policy):
    assert "contact" not in plan_table(SWAPS, policy, anonymize=True).transformed


def test_integer_ids_are_never_transformed_and_fakes_need_text(tmp_path):
    custom = tmp_path / "policy.json"
    custom.write_text(
        json.dumps(
            {
                "columns": [
                    {"match": ["id", "*_id"], "action": "hash"},
                    {"match": ["phone"], "action": "fake:phone"},
                    {"match": ["uuid_ref"], "action": "hash"},
                ]
            }
        )
    )
    policy = load_policy(custom, environ={})
    people = table(
        "people",
        col("id", "bigint"),
        col("owner_id", "integer"),
        col("phone", "bigint"),
        col("uuid_ref", "uuid"),
    )
    plan = plan_table(people, policy, anonymize=False)
    assert plan.transformed == {"uuid_ref": "hash"}
    assert plan.dropped == ["phone"]
    assert (
        "integer id column kept" in plan.reasons["id"]
        and "integer id column kept" in plan.reasons["owner_id"]
    )


@pytest.mark.parametrize(
    ("value", "scheme"), [(BCRYPT, "bcrypt"), (SCRYPT, "scrypt"), (ARGON2, "argon2"), (PBKDF2, "pbkdf2")]
)
def test_hash_values_in_innocently_named_columns_are_dropped(policy, value, scheme):
    accounts = table("members", col("id", "integer"), col("credential"), col("nickname_note"))
    plan = plan_table(accounts, policy, anonymize=False)
    batch = pa.RecordBatch.from_pydict(
        {"id": pa.array([1, 2], pa.int32()), "credential": [value, None], "nickname_note": ["a", "b"]}
    )
    plan.refine_with_sample(batch)
    assert plan.dropped == ["credential"]
    assert plan.reasons["credential"] == f"values look like {scheme} password hashes"
    assert plan.apply(batch).schema.names == ["id", "nickname_note"]


def test_apply_samples_the_first_batch_itself(policy):
    plan = plan_table(table("members", col("id", "integer"), col("credential")), policy, anonymize=False)
    out = plan.apply(pa.RecordBatch.from_pydict({"id": pa.array([1], pa.int32()), "credential": [SCRYPT]}))
    assert out.schema.names == ["id"]


def test_a_hash_appearing_after_the_sample_is_blanked(policy):
    plan = plan_table(table("members", col("id", "integer"), col("notes")), policy, anonymize=False)
    first = pa.RecordBatch.from_pydict({"id": pa.array([1], pa.int32()), "notes": ["likes chess"]})
    later = pa.RecordBatch.from_pydict(
        {"id": pa.array([2, 3], pa.int32()), "notes": [hash_password("x"), "ok"]}
    )
    plan.refine_with_sample(first)
    assert plan.apply(first).column("notes").to_pylist() == ["likes chess"]
    assert plan.apply(later).column("notes").to_pylist() == [None, "ok"]
    assert plan.redacted_cells == 1
    assert plan.dropped == []


def test_value_detection_can_be_turned_off(tmp_path):
    custom = tmp_path / "policy.json"
    custom.write_text(json.dumps({"value_detection": False}))
    plan = plan_table(
        table("members", col("id", "integer"), col("notes")), load_policy(custom, environ={}), anonymize=False
    )
    batch = pa.RecordBatch.from_pydict({"id": pa.array([1], pa.int32()), "notes": [BCRYPT]})
    assert plan.apply(batch).column("notes").to_pylist() == [BCRYPT]


def test_citext_values_equal_ignoring_case_get_one_fake(policy):
    people = table("users", col("id", "integer"), col("email", "citext"))
    plan = plan_table(people, policy, anonymize=True)
    out = plan.apply(
        pa.RecordBatch.from_pydict({"id": pa.array([1, 2], pa.int32()), "email": ["Ann@X.io", "ann@x.io"]})
    )
    first, second = out.column("email").to_pylist()
    assert first == second and FAKE_EMAIL.match(first)


def test_apply_keeps_metadata_marks_transforms_and_nulls(policy):
    schema = pa.schema(
        [
            pa.field("id", pa.int32(), metadata={"pg_type": "integer"}),
            pa.field("email", pa.string(), metadata={"pg_type": "text"}),
            pa.field("bio", pa.string(), metadata={"pg_type": "text"}),
        ],
        metadata={"pg_table": "public.users"},
    )
    users = table("users", col("id", "integer"), col("email"), col("bio"))
    batch = pa.RecordBatch.from_pydict(
        {"id": [1, 2], "email": [None, "a@b.c"], "bio": ["x", None]}, schema=schema
    )
    out = plan_table(users, policy, anonymize=True).apply(batch)
    assert out.schema.metadata == {b"pg_table": b"public.users"}
    assert out.schema.field("bio").metadata == {b"pg_type": b"text"}
    assert out.schema.field("email").metadata == {b"sanitized": b"fake:email"}
    assert out.column("email").to_pylist()[0] is None
    assert out.column("bio").to_pylist() == ["x", None]


def test_plaintext_password_columns_are_a_finding():
    users = table(
        "users",
        col("id", "integer"),
        col("password"),
        col("passwordHash"),
        col("password_reset_token"),
        col("bio"),
    )
    sample = pa.RecordBatch.from_pydict(
        {
            "id": [1, 2, 3],
            "password": ["hunter2", BCRYPT, None],
            "passwordHash": [SCRYPT, "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8", ""],
            "password_reset_token": ["a1b2c3", None, None],
            "bio": ["plain text", None, None],
        }
    )
    assert find_plaintext_password_columns(users, sample) == ["password"]
    hashed = sample.set_column(1, "password", pa.array([BCRYPT, SCRYPT, None]))
    assert find_plaintext_password_columns(users, hashed) == []


def test_policy_file_from_the_environment_with_extends(tmp_path):
    custom = tmp_path / "mine.json"
    custom.write_text(
        json.dumps(
            {
                "extends": "default",
                "include_tables": ["tutoring_sessions"],
                "exclude_tables": ["audit_log"],
                "columns": [
                    {"match": ["users.bio"], "action": "drop"},
                    {"match": ["api_key_label"], "action": "keep"},
                ],
            }
        )
    )
    policy = load_policy(environ={"BACKUP_SANITIZE_POLICY": str(custom)})
    assert policy.source == str(custom)
    assert not plan_table(table("tutoring_sessions", col("id", "integer")), policy, anonymize=False).excluded
    assert plan_table(table("user_sessions", col("id", "integer")), policy, anonymize=False).excluded
    assert plan_table(table("audit_log", col("id", "integer")), policy, anonymize=False).excluded
    plan = plan_table(
        table("users", col("id", "integer"), col("bio"), col("password")), policy, anonymize=False
    )
    assert sorted(plan.dropped) == ["bio", "password"]
    assert (
        plan_table(table("t", col("id", "integer"), col("api_key_label")), policy, anonymize=False).dropped
        == []
    )


def test_schema_qualified_patterns(tmp_path):
    custom = tmp_path / "p.json"
    custom.write_text(
        json.dumps(
            {"exclude_tables": ["audit.*"], "columns": [{"match": ["crm.people.note"], "action": "hash"}]}
        )
    )
    policy = load_policy(custom, environ={})
    assert plan_table(table("events", col("id", "integer"), schema="audit"), policy, anonymize=False).excluded
    assert not plan_table(table("events", col("id", "integer")), policy, anonymize=False).excluded
    assert plan_table(
        table("people", col("id", "integer"), col("note"), schema="crm"), policy, anonymize=False
    ).transformed == {"note": "hash"}
    assert (
        plan_table(table("people", col("id", "integer"), col("note")), policy, anonymize=False).transformed
        == {}
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ('{"columns": [{"match": ["x"], "action": "shred"}]}', "columns rule 1: unknown action 'shred'"),
        ('{"anonymize": [{"match": "email", "action": "drop"}]}', "'match' must be a list"),
        ('{"extends": "other"}', '"extends" can only be "default"'),
        ("[]", "must be a JSON object"),
    ],
)
def test_bad_policy_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(PolicyError, match=re.escape(message)) as caught:
        load_policy(path, environ={})
    assert str(path) in str(caught.value)


def test_missing_policy_file_names_the_variable(tmp_path):
    with pytest.raises(PolicyError, match="BACKUP_SANITIZE_POLICY"):
        load_policy(environ={"BACKUP_SANITIZE_POLICY": str(tmp_path / "nope.json")})


@pytest.mark.parametrize(
    ("name", "snake"),
    [
        ("passwordHash", "password_hash"),
        ("lastIP", "last_ip"),
        ("IPAddress", "ip_address"),
        ("first_name", "first_name"),
        ("userID", "user_id"),
        ("Email", "email"),
        ("profile-image", "profile_image"),
    ],
)
def test_snake_name(name, snake):
    assert snake_name(name) == snake
