"""Shared set-up for the security tests: the demo source plus what real apps also hold (a
connect-pg-simple session store, a legacy table with plaintext passwords and API keys, a table
keyed by email), PostgreSQL roles with passwords, and scans for secrets."""

from __future__ import annotations

import os
import secrets
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psycopg
from psycopg import sql

from skillswap_backup.lib.demo_db import create_demo_database
from skillswap_backup.lib.encryption import AGE_MAGIC
from skillswap_backup_tests.lifecycle_support import discover, environment
from skillswap_backup_tests.pgtools import admin_url, database_name, scratch_database

SESSION_MARKER = "sess-marker-c0ffee-7e11"
LEGACY_PASSWORDS = ("hunter2-plain", "letmein-plain", "correct-horse-plain")
API_KEY_MARKER = "sk_live_marker_51f0"

# What a Node app on connect-pg-simple and a few years of history add to the demo schema.
EXTRA_SQL = f"""
CREATE TABLE "session" (
    "sid" varchar NOT NULL COLLATE "default",
    "sess" json NOT NULL,
    "expire" timestamp(6) NOT NULL,
    CONSTRAINT "session_pkey" PRIMARY KEY ("sid")
);
CREATE INDEX "IDX_session_expire" ON "session" ("expire");
INSERT INTO "session" VALUES
    ('sid-a', '{{"cookie":{{"httpOnly":true,"path":"/"}},"passport":{{"user":1}},"csrf":"{SESSION_MARKER}-1"}}', now() + interval '1 day'),
    ('sid-b', '{{"cookie":{{"httpOnly":true,"path":"/"}},"passport":{{"user":2}},"csrf":"{SESSION_MARKER}-2"}}', now() + interval '1 day'),
    ('sid-c', '{{"cookie":{{"httpOnly":true,"path":"/"}},"passport":{{"user":3}},"csrf":"{SESSION_MARKER}-3"}}', now() + interval '2 days');

CREATE TABLE legacy_accounts (
    id serial PRIMARY KEY,
    user_id integer NOT NULL REFERENCES users (id),
    login text NOT NULL,
    password text NOT NULL,
    api_key text
);
INSERT INTO legacy_accounts (user_id, login, password, api_key) VALUES
    (1, 'old-demo', '{LEGACY_PASSWORDS[0]}', '{API_KEY_MARKER}-1'),
    (2, 'old-admin', '{LEGACY_PASSWORDS[1]}', NULL),
    (3, 'old-third', '{LEGACY_PASSWORDS[2]}', '{API_KEY_MARKER}-3');

-- A foreign key on an email: anonymized exports must fake both sides the same way.
CREATE TABLE newsletter_subscriptions (
    email text NOT NULL REFERENCES users (email),
    topic text NOT NULL,
    PRIMARY KEY (email, topic)
);
INSERT INTO newsletter_subscriptions
    SELECT email, topic FROM users, (VALUES ('weekly'), ('events')) AS t (topic) WHERE id % 3 = 0;
"""

AGE_SETTINGS = ("BACKUP_AGE_RECIPIENTS", "BACKUP_AGE_IDENTITY", "BACKUP_AGE_PASSPHRASE", "BACKUP_ANONYMIZE")


@contextmanager
def security_source(prefix: str, tmp: Path, *, backup_url: str | None = None) -> Iterator[str]:
    """A scratch demo database with EXTRA_SQL, discovered into `tmp/catalog.json`; the environment
    points at it (DATABASE_URL is `backup_url` when given, e.g. the same database as another role).
    Encryption and anonymizing start off whatever the caller's environment says."""
    with scratch_database(prefix) as url:
        create_demo_database(admin_url(), database_name(url), scale=1)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(EXTRA_SQL)
        discover(url, tmp / "catalog.json")
        with environment(
            DATABASE_URL=backup_url or url,
            BACKUP_ROOT=str(tmp / "backups"),
            BACKUP_CATALOG=str(tmp / "catalog.json"),
            **dict.fromkeys(AGE_SETTINGS),
        ):
            yield url


@contextmanager
def login_role(kind: str) -> Iterator[tuple[str, str]]:
    """A LOGIN role with a unique name and a distinct random password; dropped afterwards
    (roles are cluster-wide, so the name is unique per test run)."""
    name = f"ssb_{kind}_{uuid.uuid4().hex[:8]}"
    password = f"pw-{kind}-{secrets.token_hex(12)}"
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(password)))
    try:
        yield name, password
    finally:
        with psycopg.connect(admin_url(), autocommit=True) as conn:
            for (datname,) in conn.execute("SELECT datname FROM pg_database WHERE datallowconn").fetchall():
                # Privileges granted in any database keep a role from being dropped.
                try:
                    with psycopg.connect(_with_db(admin_url(), datname), autocommit=True) as db:
                        db.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
                except psycopg.Error:
                    pass
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def grant_read_only(url: str, role: str) -> None:
    """Exactly what the README's backup role gets: CONNECT, USAGE on schemas, SELECT on tables and sequences."""
    with psycopg.connect(url, autocommit=True) as conn:
        schemas = [r[0] for r in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'"
        ).fetchall()]
        ident = sql.Identifier(role)
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database_name(url)), ident))
        for schema in schemas:
            s = sql.Identifier(schema)
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(s, ident))
            conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(s, ident))
            conn.execute(sql.SQL("GRANT SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(s, ident))


def url_as(url: str, role: str, password: str) -> str:
    """The same database as a postgresql:// URL (how providers hand out DATABASE_URL), logging in as `role`."""
    from urllib.parse import quote

    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(url)
    return f"postgresql://{quote(role)}:{quote(password)}@{info['host']}:{info.get('port') or 5432}/{info['dbname']}"


def _with_db(url: str, dbname: str) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo(url, dbname=dbname)


def files_containing(root: Path, needles: list[str]) -> dict[str, list[str]]:
    """Every file under `root` whose bytes contain one of `needles`: {path: [needles found]}."""
    found: dict[str, list[str]] = {}
    encoded = [(n, n.encode()) for n in needles]
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits = [n for n, raw in encoded if raw in data]
        if hits:
            found[str(path)] = hits
    return found


def is_age_or_age_prefix(head: bytes) -> bool:
    """True for the start of an age file, including a file whose header is still being written."""
    return head.startswith(AGE_MAGIC) or AGE_MAGIC.startswith(head)


def read_head(path: str | os.PathLike, size: int = len(AGE_MAGIC)) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except (FileNotFoundError, IsADirectoryError):
        return None
