"""Throwaway PostgreSQL databases for tests: a unique name per use, always dropped afterwards."""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def admin_url() -> str:
    """URL of a database on the test server to run CREATE/DROP DATABASE from."""
    return os.environ.get("SKILLSWAP_TEST_ADMIN_URL", DEFAULT_ADMIN_URL)


def database_name(url: str) -> str:
    """The database a postgres:// URL points at."""
    return urlsplit(url).path.lstrip("/")


@contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """Create database `<prefix>_<8 hex>`, yield its URL, then drop it however the block ends."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    identifier = sql.Identifier(name)
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(identifier))
    try:
        yield urlsplit(admin_url())._replace(path=f"/{name}").geturl()
    finally:
        # FORCE: a test that failed midway may still hold connections to it.
        with psycopg.connect(admin_url(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(identifier))
