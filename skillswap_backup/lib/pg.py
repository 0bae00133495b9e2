"""Connections to PostgreSQL with errors people can act on and no password ever shown."""

from __future__ import annotations

import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from .catalog import Table


class DatabaseError(Exception):
    """One clear line about a database problem; never carries a password."""


def describe(url: str) -> str:
    """`user@host:port/dbname`, safe to print."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<unparseable database URL>"
    host = info.get("host") or "localhost"
    return f"{info.get('user') or '?'}@{host}:{info.get('port') or 5432}/{info.get('dbname') or '?'}"


def redact(text: str, url: str | None = None) -> str:
    """Remove any password (from `url`, or any `scheme://user:pass@`) from a message."""
    if url:
        password = conninfo_to_dict(url).get("password")
        if password:
            text = text.replace(password, "***")
    return re.sub(r"(://[^:/@\s]+:)[^@\s]+@", r"\1***@", text)


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    fatal = [line for line in lines if "FATAL" in line or "failed" in line]
    return (fatal[-1] if fatal else lines[0] if lines else type(error).__name__)


def open_connection(url: str, *, purpose: str = "database", autocommit: bool = False) -> psycopg.Connection:
    """Open a connection; turn connection failures into one safe, actionable line."""
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=10, application_name="skillswap-backup")
    except psycopg.OperationalError as error:
        message = redact(_first_line(error), url)
        if "password authentication failed" in message or "no password supplied" in message:
            hint = "check the user and password in the URL"
        elif "does not exist" in message:
            hint = "check the database name in the URL"
        else:
            hint = "check that the server is running and reachable"
        raise DatabaseError(f"cannot connect to the {purpose} {describe(url)}: {message} ({hint})") from None
    except psycopg.ProgrammingError:
        raise DatabaseError(f"the {purpose} URL is not a valid PostgreSQL connection string") from None


@contextmanager
def connect(url: str, *, purpose: str = "database", autocommit: bool = False) -> Iterator[psycopg.Connection]:
    conn = open_connection(url, purpose=purpose, autocommit=autocommit)
    try:
        yield conn
    finally:
        conn.close()


def server_major(conn: psycopg.Connection) -> int:
    return conn.info.server_version // 10000


# What a PostgreSQL client tool may inherit from our environment. Everything else stays behind:
# DATABASE_URL, NEW_DATABASE_URL, DAGSTER_PG_URL, BACKUP_AGE_PASSPHRASE and cloud keys hold
# secrets the tool does not need, and a child's environment is one more place they could be read.
_TOOL_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "LD_LIBRARY_PATH", "SYSTEMROOT")


def tool_env() -> dict[str, str]:
    """A minimal environment for pg_dump/pg_restore: no PG* variable, no secret of ours."""
    return {k: v for k, v in os.environ.items() if k in _TOOL_ENV or k.startswith("LC_")}


@contextmanager
def libpq_env(url: str) -> Iterator[dict[str, str]]:
    """Environment for pg_dump/pg_restore/psql: PG* variables and a 0600 passfile, never a URL on argv."""
    info = conninfo_to_dict(url)
    env = tool_env()
    mapping = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "dbname": "PGDATABASE",
               "sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "options": "PGOPTIONS",
               "connect_timeout": "PGCONNECT_TIMEOUT", "application_name": "PGAPPNAME"}
    for key, var in mapping.items():
        if info.get(key):
            env[var] = str(info[key])
    password = info.get("password")
    with tempfile.TemporaryDirectory(prefix="skillswap-pass-") as tmp:
        if password:
            passfile = Path(tmp) / "pgpass"
            escaped = password.replace("\\", "\\\\").replace(":", "\\:")
            passfile.touch(mode=0o600)
            passfile.write_text(f"*:*:*:*:{escaped}\n")
            env["PGPASSFILE"] = str(passfile)
        yield env


def own_rows(table: Table) -> sql.Composed:
    """What to read `table`'s rows FROM (or TRUNCATE): `ONLY` a plain table, as pg_dump reads it.

    Without ONLY, a parent's rows include its inheritance children's, which the catalog holds as
    tables of their own: a backup would store them twice and a restore load them twice (and a
    TRUNCATE of the parent would empty the children). A partitioned table is the exception: it
    holds no rows itself, they are all in its partitions.
    """
    return sql.SQL("{}{}").format(sql.SQL("" if table.partitioned else "ONLY "), sql.Identifier(table.schema, table.name))
