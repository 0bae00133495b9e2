"""Shared CLI plumbing: source URL, the Dagster instance, the catalog."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ..lib import pg, settings
from ..lib.catalog import Catalog, load_catalog, save_catalog
from ..lib.discover import foreign_tables, load_tier_policy, reflect


def add_source_args(parser) -> None:
    parser.add_argument("--database-url", help="source database (default: $DATABASE_URL)")


def add_snapshot_arg(parser) -> None:
    """The snapshot a command works on, given as `KEY` or as `--snapshot KEY`: every command
    that takes one accepts both, so a habit from one command works in the others."""
    parser.add_argument("snapshot", nargs="?", metavar="KEY", help="snapshot partition key (default: the newest complete snapshot)")
    parser.add_argument("--snapshot", dest="snapshot_option", metavar="KEY", help="the same, as an option")


def requested_snapshot(args) -> str | None:
    from .errors import CommandFailed

    given = dict.fromkeys(key for key in (args.snapshot, args.snapshot_option) if key)
    if len(given) > 1:
        raise CommandFailed(f"two snapshots given ({' and '.join(given)}): give it once, as KEY or as --snapshot KEY")
    return next(iter(given), None)


def use_source_url(args) -> str:
    """Resolve the source URL and export it, so Dagster's EnvVar("DATABASE_URL") sees the override."""
    url = settings.database_url(getattr(args, "database_url", None))
    os.environ["DATABASE_URL"] = url
    return url


def admin_url(url: str, dbname: str = "postgres") -> str:
    """The same server and credentials, another database (for CREATE/DROP DATABASE)."""
    return make_conninfo(url, dbname=dbname)


def ensure_database(url: str, *, purpose: str) -> None:
    """Create the database named in `url` if it does not exist yet."""
    dbname = conninfo_to_dict(url)["dbname"]
    with pg.connect(admin_url(url), purpose=f"server of the {purpose}", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone() is None:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            except psycopg.errors.DuplicateDatabase:
                pass  # created concurrently: fine


# Instances this command opened: `main.entry` disposes of them before it leaves.
_OPEN_INSTANCES: list = []


def close_instances() -> None:
    while _OPEN_INSTANCES:
        _OPEN_INSTANCES.pop().dispose()


def dagster_instance():
    """The project's Dagster instance (dagster.yaml; runs in PostgreSQL), created on first use."""
    import dagster as dg

    settings.ensure_dagster_home()
    # The SQLAlchemy driver suffix (postgresql+psycopg2://) is not libpq syntax.
    ensure_database(os.environ["DAGSTER_PG_URL"].replace("+psycopg2", ""), purpose="Dagster instance database")
    instance = dg.DagsterInstance.get()
    # dagster-postgres opens a new connection per event by default (hundreds per run); the
    # webserver's pooled mode keeps one open, which takes seconds off every CLI run.
    instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=5)
    _OPEN_INSTANCES.append(instance)
    return instance


def discover_catalog(url: str, include: list[str] | None = None, exclude: list[str] | None = None) -> Catalog:
    with pg.connect(url, purpose="source database") as conn:
        catalog = reflect(
            conn,
            tier_policy=load_tier_policy(settings.tier_policy_path()),
            include=include if include is not None else settings.split_list(os.environ.get("BACKUP_INCLUDE")),
            exclude=exclude if exclude is not None else settings.split_list(os.environ.get("BACKUP_EXCLUDE")),
        )
        outside = foreign_tables(conn)
    save_catalog(catalog, settings.catalog_path())
    if outside:
        shown = ", ".join(outside[:5]) + (" …" if len(outside) > 5 else "")
        print(
            f"not backed up: {len(outside)} foreign table(s) ({shown}); their rows live outside this database "
            "(as pg_dump leaves them), their definitions are in the schema dump and restored"
        )
    return catalog


def catalog_or_discover(url: str) -> Catalog:
    """The saved catalog; on first use, discover it (and say so)."""
    path = settings.catalog_path()
    if path.exists():
        return load_catalog(path)
    print(f"no catalog at {path} yet: discovering the source database first")
    return discover_catalog(url)


def write_whole_file(target: Path, write: Callable[[BinaryIO], None]) -> int:
    """Run `write(sink)` into a temporary file beside `target`, then rename it, so a file of that
    name is always whole; the bytes written. A failed write leaves no file behind."""
    partial = target.with_name(f".{target.name}.partial")
    try:
        with open(partial, "wb") as sink:
            write(sink)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(partial, target)
    except OSError as error:
        from .errors import CommandFailed

        raise CommandFailed(f"cannot write {target}: {error.strerror or error}") from None
    finally:
        partial.unlink(missing_ok=True)
    return target.stat().st_size
