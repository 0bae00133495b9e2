"""`rotate_secrets` on real databases: sessions emptied, admin passwords reset in the app's own hash
format (bcrypt, passport-local scrypt) into a 0600 file, everything else untouched, nothing printed."""

from __future__ import annotations

import stat

import bcrypt
import psycopg
import pytest

from skillswap_backup.lib import passwords, rotate
from skillswap_backup_tests.pgtools import scratch_database

OLD = "old-password-1"


def _bcrypt(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()


SCHEMA = """
CREATE TABLE users (
    id serial PRIMARY KEY, email text UNIQUE NOT NULL, password text NOT NULL,
    role text NOT NULL DEFAULT 'user', is_admin boolean NOT NULL DEFAULT false, api_key text
);
CREATE TABLE "session" (sid varchar PRIMARY KEY, sess json NOT NULL, expire timestamp(6) NOT NULL);
CREATE TABLE user_sessions (id serial PRIMARY KEY, user_id integer REFERENCES users (id), token text);
CREATE TABLE refresh_tokens (id serial PRIMARY KEY, user_id integer, token_hash text);
INSERT INTO "session" SELECT 'sid-' || g, '{"passport":{"user":1}}', now() FROM generate_series(1, 5) g;
"""


def _users(conn, hashes: list[str], *, roles=("admin", "user", "user", "Administrator"), flags=(False, True, False, False)):
    for i, (stored, role, flag) in enumerate(zip(hashes, roles, flags), start=1):
        conn.execute("INSERT INTO users (email, password, role, is_admin, api_key) VALUES (%s, %s, %s, %s, %s)",
                     (f"person{i}@example.com", stored, role, flag, f"key-{i}"))
    conn.execute("INSERT INTO user_sessions (user_id, token) SELECT id, 'tok' FROM users")


@pytest.fixture
def target():
    with scratch_database("ssb_test_rotate") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(SCHEMA)
        yield url


def _passwords_file(path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return {account: password for _, account, password in (line.split("\t") for line in lines)}


def _stored(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT email, password FROM users").fetchall())


def _count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]


def test_bcrypt_admins_get_new_passwords_that_verify_and_sessions_are_emptied(target, tmp_path, capsys):
    with psycopg.connect(target, autocommit=True) as conn:
        _users(conn, [_bcrypt(OLD)] * 4)
    before = _stored(target)
    path = tmp_path / "secrets" / "admins.txt"
    report = rotate.rotate_secrets(target, secrets_file=path)

    issued = _passwords_file(path)
    # role 'admin', is_admin true, role 'Administrator': three admins; person3 is a plain user.
    assert sorted(issued) == ["person1@example.com", "person2@example.com", "person4@example.com"]
    after = _stored(target)
    for email, password in issued.items():
        assert after[email].startswith("$2b$10$")
        assert bcrypt.checkpw(password.encode(), after[email].encode())
        assert not bcrypt.checkpw(OLD.encode(), after[email].encode())
    assert after["person3@example.com"] == before["person3@example.com"]
    assert len(set(issued.values())) == 3 and all(len(p) >= 24 for p in issued.values())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700

    assert report.sessions_emptied == {"public.session": 5, "public.user_sessions": 4}
    assert _count(target, "session") == 0 and _count(target, "user_sessions") == 0
    assert _count(target, "users") == 4  # only sessions go; accounts stay
    assert report.admins_reset == {"public.users.password": 3} and report.schemes == {"public.users.password": "bcrypt"}
    assert report.secrets_file == str(path.resolve())
    text = "\n".join(report.lines()) + repr(report.to_dict()) + capsys.readouterr().out
    assert not any(p in text for p in issued.values())
    checklist = "\n".join(report.checklist)
    assert "SESSION_SECRET" in checklist and "public.users.api_key" in checklist
    assert "public.refresh_tokens" in checklist and "DATABASE_URL" in checklist


def test_passport_scrypt_is_detected_and_written_in_the_same_format(target, tmp_path):
    with psycopg.connect(target, autocommit=True) as conn:
        _users(conn, [passwords.hash_password(OLD, "scrypt")] * 4)
    report = rotate.rotate_secrets(target, secrets_file=tmp_path / "s.txt")
    issued = _passwords_file(tmp_path / "s.txt")
    after = _stored(target)
    assert report.schemes == {"public.users.password": "scrypt"}
    for email, password in issued.items():
        assert passwords.detect_scheme(after[email]) == "scrypt"
        assert passwords.verify_password(password, after[email])


def test_the_scheme_can_be_forced(target, tmp_path):
    with psycopg.connect(target, autocommit=True) as conn:
        _users(conn, [_bcrypt(OLD)] * 4)
    rotate.rotate_secrets(target, scheme="scrypt", secrets_file=tmp_path / "s.txt")
    after = _stored(target)
    assert passwords.verify_password(_passwords_file(tmp_path / "s.txt")["person1@example.com"], after["person1@example.com"])
    assert passwords.detect_scheme(after["person1@example.com"]) == "scrypt"
    assert passwords.detect_scheme(after["person3@example.com"]) == "bcrypt"
    with pytest.raises(rotate.RotateError, match="unknown password scheme"):
        rotate.rotate_secrets(target, scheme="md5")


def test_formats_it_cannot_write_and_plaintext_are_left_alone_with_a_note(target, tmp_path):
    argon = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"
    with psycopg.connect(target, autocommit=True) as conn:
        _users(conn, [argon] * 4)
        conn.execute("CREATE TABLE legacy (id int PRIMARY KEY, login text, passwd text, is_admin boolean)")
        conn.execute("INSERT INTO legacy VALUES (1, 'root', 'plain-secret', true)")
    before = _stored(target)
    report = rotate.rotate_secrets(target, secrets_file=tmp_path / "s.txt")
    assert report.admins_reset == {} and report.secrets_file is None and not (tmp_path / "s.txt").exists()
    assert _stored(target) == before
    notes = "\n".join(report.notes)
    assert "public.users.password holds argon2 hashes" in notes and "public.legacy.passwd does not hold password hashes" in notes
    assert "plain-secret" not in notes
    assert report.sessions_emptied["public.session"] == 5  # sessions are emptied all the same


def test_drizzle_camel_case_columns_and_role_arrays(tmp_path):
    with scratch_database("ssb_test_rotate_camel") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute('CREATE TABLE accounts (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), "userName" text, '
                         '"passwordHash" text, "isAdmin" boolean, roles text[])')
            conn.execute('INSERT INTO accounts ("userName", "passwordHash", "isAdmin", roles) VALUES '
                         "('a', %s, true, '{}'), ('b', %s, false, '{editor,ADMIN}'), ('c', %s, false, '{editor}')",
                         [_bcrypt(OLD)] * 3)
        report = rotate.rotate_secrets(url, secrets_file=tmp_path / "s.txt")
        assert sorted(_passwords_file(tmp_path / "s.txt")) == ["a", "b"]
        assert report.admins_reset == {"public.accounts.passwordHash": 2}
        assert report.sessions_emptied == {}


def test_an_existing_secrets_file_is_never_overwritten_and_nothing_changes(target, tmp_path):
    with psycopg.connect(target, autocommit=True) as conn:
        _users(conn, [_bcrypt(OLD)] * 4)
    path = tmp_path / "exists.txt"
    path.write_text("keep me\n")
    before = _stored(target)
    with pytest.raises(rotate.RotateError, match="already exists"):
        rotate.rotate_secrets(target, secrets_file=path)
    assert path.read_text() == "keep me\n"
    assert _stored(target) == before and _count(target, "session") == 5  # one transaction: rolled back
