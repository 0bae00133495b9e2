"""The restore test: restore a snapshot into a scratch database, validate it, drop it — always.

The scratch database gets a unique name (`ssb_restore_test_<hex>`) on the restore target's server
(NEW_DATABASE_URL) or, without one, on the source's; it is dropped however the test ends, so a
test never leaves a database behind. Validation recomputes, in the restored database, the same
per-table row count and content checksum the backup computed inside its source snapshot, and
compares them with the manifest: equal means every row came back as PostgreSQL prints it.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Callable

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from . import checksum, pg
from .catalog import Catalog
from .manifest import read_manifest
from .settings import SettingMissing
from .storage import SnapshotStore

SCRATCH_PREFIX = "ssb_restore_test_"


class RestoreTestError(Exception):
    """One clear line: why the restore test could not run at all."""

describe = pg.describe


def scratch_server_url(override: str | None = None) -> str:
    url = override or os.environ.get("NEW_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not url:
        raise SettingMissing("the restore test needs a server: set NEW_DATABASE_URL or DATABASE_URL, or pass --target-url")
    return url


def _on_database(url: str, dbname: str) -> str:
    return make_conninfo(url, dbname=dbname)


def _admin_url(url: str) -> str:
    """A database to run CREATE/DROP DATABASE from: the URL's own when it exists (hosted providers
    may not let you into `postgres`), else the server's `postgres`."""
    try:
        with pg.connect(url, purpose="restore-test server"):
            return url
    except pg.DatabaseError as error:
        if "does not exist" not in str(error):
            raise
    return _on_database(url, "postgres")


def create_scratch(server_url: str) -> str:
    name = f"{SCRATCH_PREFIX}{uuid.uuid4().hex[:12]}"
    with pg.connect(_admin_url(server_url), purpose="restore-test server", autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.errors.InsufficientPrivilege:
            raise RestoreTestError(
                f"cannot create a scratch database on {pg.describe(server_url).rsplit('/', 1)[0]}: the role lacks CREATEDB; "
                "give it CREATEDB or pass --target-url of a server where it may create databases"
            ) from None
    return name


def drop_scratch(server_url: str, name: str) -> None:
    if not name.startswith(SCRATCH_PREFIX):  # never drop anything this module did not create
        raise ValueError(f"refusing to drop {name!r}: not a restore-test scratch database")
    with pg.connect(_admin_url(server_url), purpose="restore-test server", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def scratch_exists(server_url: str, name: str) -> bool:
    with pg.connect(_admin_url(server_url), purpose="restore-test server", autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def validate(target_url: str, body: dict) -> dict:
    """Compare each restored table's rows and checksum with the manifest; returns the findings."""
    catalog = Catalog.from_dict(body["catalog"])
    mismatches, rows = [], 0
    for name, expected in body["tables"].items():
        count, content = checksum.measure(
            target_url, catalog.table(name), checksum.method_of(expected), purpose="restored scratch database"
        )
        rows += count
        if count != expected["rows"] or (expected.get("checksum") is not None and content != expected["checksum"]):
            mismatches.append(
                f"{name}: {count} rows (checksum {content}), the manifest says {expected['rows']} (checksum {expected.get('checksum')})"
            )
    return {"tables": len(body["tables"]), "rows": rows, "mismatches": mismatches}


def _restore_into(store: SnapshotStore, target_url: str, log: Callable[[str], None]) -> dict:
    """The project's own restore (the one `skillswap-backup restore` runs), with its own verification."""
    from . import restore

    # The weekly test has time to spare: the suites run on the restored database itself, an
    # independent second judgement of the snapshot's content.
    options = restore.RestoreOptions(snapshot=store.partition_key, validate_target=True)
    report = restore.restore_snapshot(store, target_url, options=options, log=log)
    return {"foreign_keys_checked": report.foreign_keys, "smoke_tests": len(report.smoke)}


def run(store: SnapshotStore, server_url: str, *, log: Callable[[str], None] = lambda _: None) -> dict:
    """Restore the snapshot into a fresh scratch database, validate, drop; return a JSON-able result."""
    body = read_manifest(store)
    started = time.monotonic()
    result: dict = {"server": pg.describe(server_url).rsplit("/", 1)[0], "database": None, "dropped": True}
    try:
        name = result["database"] = create_scratch(server_url)
    except (RestoreTestError, pg.DatabaseError) as error:
        log(f"restore test could not start: {error}")
        return {**result, "ok": False, "error": str(error), "seconds": round(time.monotonic() - started, 2)}
    target = _on_database(server_url, name)
    try:
        result.update(_restore_into(store, target, log))
        found = validate(target, body)
        result.update(found, ok=not found["mismatches"])
        if found["mismatches"]:
            result["error"] = "; ".join(found["mismatches"])
    except Exception as error:  # the test's outcome, recorded: a failing restore is what it looks for
        result.update(ok=False, error=pg.redact(str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__, server_url))
    finally:
        drop_scratch(server_url, name)
        result["dropped"] = not scratch_exists(server_url, name)
    result["seconds"] = round(time.monotonic() - started, 2)
    log(f"restore test {'passed' if result['ok'] else 'FAILED'}: {result.get('tables', 0)} tables, "
        f"{result.get('rows', 0)} rows; scratch database {name} dropped")
    return result
