"""Restore a snapshot into a target database, the way pg_restore does, from the Parquet files.

Steps (each a function, so the Dagster job can run them as ops and the restore test can chain
them):

1. `plan_restore`: pick the snapshot (newest complete by default), the tables (all, one tier, or
   a list, closed over foreign-key parents) and check the target: tables that already hold data
   are refused by name unless `clean`.
2. `apply_schema`: pre-data from the snapshot's schema dump (`pg_restore --section=pre-data`,
   filtered with `-L` to the restored tables and the objects they need), after creating needed
   extensions ourselves so a provider that forbids one gets a clear message. `clean` drops exactly
   the restored tables (and views over them) first. Owners and GRANTs are never restored.
3. `load_tables`: every table from its Parquet parts with `COPY … FROM STDIN` (text format),
   streaming, two tables at a time, biggest first; generated columns are left to the target to
   recompute. Right after its load, each table gets its own post-data (indexes, primary and
   unique keys, triggers) while the other loader keeps loading, as `pg_restore -j` schedules it.
4. `apply_post_data`: the foreign keys (they span tables, so they wait for every load), then
   `finish_restore`: `set_sequences` moves every sequence and identity past the restored rows,
   `refresh_materialized_views` fills the materialized views the source had populated, and
   `restore_large_objects` brings the source's large objects back from the full dump.
5. `restore_verify.verify`: counts, checksums, foreign keys and a write smoke test.

`--data-only` loads into tables that exist already (created by the app's migrations): one
transaction that drops the restored tables' foreign keys, loads in foreign-key order, and adds
the same keys back (validated) — no superuser tricks such as session_replication_role. The
`dump` source restores the snapshot's full pg_dump with pg_restore instead.
"""

from __future__ import annotations

import queue
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from . import checksum, copy_text, dumps, integrity, ordering, pg, pgdump, pgtypes, restore_quality, schema_objects
from .arrow_memory import arrow_pool
from .catalog import Catalog, Table
from .manifest import IncompleteSnapshot, list_snapshots, read_manifest
from .storage import SnapshotStore

MODES = ("full", "data-only")
SOURCES = ("parquet", "dump")
TIERS = ("critical", "important", "optional")

Log = Callable[[str], None]


class RestoreError(Exception):
    """One clear line: what cannot be restored, and what to do."""


@dataclass
class RestoreOptions:
    snapshot: str | None = None
    mode: str = "full"
    tables: tuple[str, ...] = ()
    tier: str | None = None
    clean: bool = False
    source: str = "parquet"
    jobs: int = 2
    force: bool = False  # restore a snapshot that failed blocking data-quality checks
    # Run the suites on the target even when its content is proven identical to the snapshot.
    validate_target: bool = False


@dataclass
class RestorePlan:
    """What one restore does; picklable and free of secrets (the target URL is not in it)."""

    root: str
    partition_key: str
    target: str  # pg.describe() of the target, for people
    mode: str
    source: str
    clean: bool
    jobs: int
    tables: list[str]  # qualified names, in load (foreign-key) order
    requested: list[str]
    added_parents: list[str]
    existing: list[str] = field(default_factory=list)  # restored tables present in the target before
    notes: list[str] = field(default_factory=list)
    quality: dict = field(default_factory=dict)  # restore_quality.QualityGate of the restored tables
    validate_target: bool = False


def open_snapshot(root: str, partition_key: str | None) -> tuple[SnapshotStore, dict]:
    """The store and manifest of a complete snapshot (the newest one when no key is given)."""
    from . import encryption

    keys = list_snapshots(root)
    if partition_key is None:
        if not keys:
            raise RestoreError(f"no complete snapshot under {root}; run `skillswap-backup backup` first")
        partition_key = keys[-1]
    elif partition_key not in keys:
        listed = ", ".join(keys[-5:]) or "none"
        raise RestoreError(f"snapshot {partition_key!r} is not a complete snapshot under {root} (complete: {listed})")
    store = SnapshotStore(root, partition_key, encryption_config=encryption.config_from_env())
    return store, read_manifest(store)


def snapshot_catalog(manifest: dict) -> Catalog:
    """The catalog the snapshot was taken with (not today's catalog file)."""
    return Catalog.from_dict(manifest["catalog"])


def _resolve_names(catalog: Catalog, names: tuple[str, ...], partition_key: str) -> set[str]:
    found = set()
    for name in names:
        try:
            found.add(catalog.table(name).qualified)
        except KeyError:
            known = ", ".join(t.name if t.schema == "public" else t.qualified for t in catalog.tables)
            raise RestoreError(f"table {name!r} is not in snapshot {partition_key} (tables: {known})") from None
    return found


def select_tables(catalog: Catalog, options: RestoreOptions, partition_key: str) -> tuple[list[Table], list[str], list[str]]:
    """(tables in load order, requested names, foreign-key parents added)."""
    if options.tables and options.tier:
        raise RestoreError("choose either --tables or --tier, not both")
    if options.tables:
        requested = _resolve_names(catalog, tuple(options.tables), partition_key)
    elif options.tier:
        if options.tier not in TIERS:
            raise RestoreError(f"unknown tier {options.tier!r}; tiers are {', '.join(TIERS)}")
        requested = {t.qualified for t in catalog.tables if t.tier == options.tier}
        if not requested:
            raise RestoreError(f"snapshot {partition_key} has no {options.tier} tables")
    else:
        return ordering.load_order(catalog), [], []
    chosen, added = ordering.with_parents(catalog, requested)
    by_name = catalog.by_qualified()
    return ordering.load_order(catalog, [by_name[q] for q in chosen]), sorted(requested), sorted(added)


def _ident(table: Table) -> sql.Identifier:
    return sql.Identifier(table.schema, table.name)


def _regclass_text(table: Table) -> str:
    return sql.Identifier(table.schema, table.name).as_string(None)


def target_state(conn: psycopg.Connection, tables: list[Table]) -> tuple[list[str], list[str]]:
    """(restored tables that exist in the target, those of them holding rows)."""
    existing, with_rows = [], []
    for table in tables:
        if conn.execute("SELECT to_regclass(%s)", (_regclass_text(table),)).fetchone()[0] is None:
            continue
        existing.append(table.qualified)
        if conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(pg.own_rows(table))).fetchone()[0]:
            with_rows.append(table.qualified)
    return existing, with_rows


def column_differences(conn: psycopg.Connection, tables: list[Table]) -> list[str]:
    """For --data-only: restored columns the target lacks, and columns it cannot be loaded into."""
    problems = []
    for table in tables:
        live = dict(conn.execute(
            "SELECT attname, attgenerated FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
            (_regclass_text(table),),
        ).fetchall())
        lacking = [c.name for c in pgtypes.restore_columns(table) if c.name not in live]
        generated = [c.name for c in pgtypes.restore_columns(table) if live.get(c.name)]
        if lacking:
            problems.append(f"{table.qualified} lacks column{'s' if len(lacking) > 1 else ''} {', '.join(lacking)}")
        if generated:
            problems.append(f"{table.qualified} computes {', '.join(generated)} (generated there, stored in the snapshot)")
    return problems


def plan_restore(store: SnapshotStore, manifest: dict, target_url: str, options: RestoreOptions) -> RestorePlan:
    if options.mode not in MODES:
        raise RestoreError(f"unknown mode {options.mode!r}; modes are {', '.join(MODES)}")
    if options.source not in SOURCES:
        raise RestoreError(f"unknown source {options.source!r}; sources are {', '.join(SOURCES)}")
    catalog = snapshot_catalog(manifest)
    tables, requested, added = select_tables(catalog, options, store.partition_key)
    quality = restore_quality.gate(manifest, [t.qualified for t in tables], force=options.force, store=store)
    if options.source == "dump":
        if requested or options.mode != "full":
            raise RestoreError("--from dump restores the whole database; use the Parquet source for --tables, --tier or --data-only")
        _require_file(manifest, dumps.FULL_DUMP, "full pg_dump")
    elif options.mode == "full":
        _require_file(manifest, dumps.SCHEMA_DUMP, "schema dump")
    with pg.connect(target_url, purpose="restore target") as conn:
        existing, with_rows = target_state(conn, tables)
        if checksum.unavailable_on(conn, {checksum.method_of(manifest["tables"][t.qualified]) for t in tables}):
            raise RestoreError(
                f"the target {pg.describe(target_url)} runs PostgreSQL {pg.server_major(conn)}; verifying snapshot "
                f"{store.partition_key} against it needs PostgreSQL 14 or newer (hash_record_extended): restore into a newer server"
            )
    if with_rows and not options.clean:
        raise RestoreError(
            f"the target {pg.describe(target_url)} already holds data in {', '.join(with_rows)}; restore into an "
            "empty database, or pass --clean to replace exactly the restored tables"
        )
    if options.mode == "full" and existing and not options.clean:
        raise RestoreError(
            f"tables already exist in the target {pg.describe(target_url)}: {', '.join(existing)}; pass --data-only "
            "to load into them, or --clean to drop and recreate them"
        )
    if options.mode == "data-only":
        missing = [t.qualified for t in tables if t.qualified not in existing]
        if missing:
            raise RestoreError(
                f"--data-only loads into existing tables, but the target {pg.describe(target_url)} lacks "
                f"{', '.join(missing)}; create them (e.g. run the app's migrations) or restore without --data-only"
            )
        with pg.connect(target_url, purpose="restore target") as conn:
            drift = column_differences(conn, tables)
        if drift:
            raise RestoreError(
                f"--data-only: the target's tables differ from snapshot {store.partition_key}: {'; '.join(drift)}; "
                "bring the target's schema up to date (the app's migrations) or restore without --data-only"
            )
    return RestorePlan(
        root=store.root,
        partition_key=store.partition_key,
        target=pg.describe(target_url),
        mode=options.mode,
        source=options.source,
        clean=options.clean,
        jobs=max(1, options.jobs),
        tables=[t.qualified for t in tables],
        requested=requested,
        added_parents=added,
        existing=existing,
        quality=quality.to_dict(),
        validate_target=options.validate_target,
    )


def _require_file(manifest: dict, relpath: str, what: str) -> str:
    stored = stored_path(manifest, relpath)
    if stored is None:
        raise RestoreError(
            f"snapshot {manifest['partition_key']} has no {what} ({relpath}); take a new backup "
            "(`skillswap-backup backup`) or restore with --data-only into existing tables"
        )
    return stored


def stored_path(manifest: dict, relpath: str) -> str | None:
    for f in manifest["files"]:
        if f["path"] in (relpath, relpath + ".age"):
            return f["path"]
    return None


def plan_tables(plan: RestorePlan, manifest: dict) -> list[Table]:
    by_name = snapshot_catalog(manifest).by_qualified()
    return [by_name[q] for q in plan.tables]


# ---- schema ------------------------------------------------------------------------------------


@contextmanager
def schema_archive(store: SnapshotStore, manifest: dict) -> Iterator[Path]:
    """The schema dump as a local file (pg_restore -L and -j need one), decrypted when stored encrypted."""
    stored = _require_file(manifest, dumps.SCHEMA_DUMP, "schema dump")
    with tempfile.TemporaryDirectory(prefix="skillswap-restore-") as tmp:
        path = Path(tmp) / "schema.dump"
        with store.reader(stored) as source, path.open("wb") as out:
            for chunk in pgdump.iter_chunks(source):
                out.write(chunk)
        yield path


def schema_objects_of(store: SnapshotStore, manifest: dict) -> dict:
    stored = _require_file(manifest, dumps.SCHEMA_OBJECTS, "schema object map")
    return store.read_json(stored)


def _restore_args(dbname: str) -> list[str]:
    return [*pgdump.PORTABLE_RESTORE_FLAGS, "--exit-on-error", f"--dbname={dbname}"]


def _exists(conn: psycopg.Connection, address: tuple) -> bool:
    kind, names, args = address
    try:
        with conn.transaction():
            conn.execute("SELECT pg_get_object_address(%s, %s::text[], %s::text[])", (kind, list(names), list(args)))
        return True
    except psycopg.Error:
        return False


def _create_extensions(conn: psycopg.Connection, entries: list[schema_objects.ObjectEntry], plan: RestorePlan) -> set[str]:
    """CREATE EXTENSION for each one the source had; returns the schemas created on the way."""
    created_schemas: set[str] = set()
    for entry in entries:
        if entry.kind != "extension" or not entry.extension:
            continue
        name, schema = entry.extension["name"], entry.extension["schema"]
        if conn.execute("SELECT 1 FROM pg_extension WHERE extname = %s", (name,)).fetchone():
            continue
        try:
            with conn.transaction():
                if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() is None:
                    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
                    created_schemas.add(schema)
                conn.execute(
                    sql.SQL("CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {}").format(
                        sql.Identifier(name), sql.Identifier(schema)
                    )
                )
        except psycopg.Error as error:
            raise RestoreError(
                f"the target {plan.target} does not allow CREATE EXTENSION {name} ({error.diag.message_primary}); "
                f"enable {name} in the provider's dashboard (Supabase: Database > Extensions) or have an "
                "administrator create it, then re-run the restore"
            ) from None
        plan.notes.append(f"created extension {name}")
    return created_schemas


def _clean(conn: psycopg.Connection, plan: RestorePlan, tables: list[Table], selected: list[schema_objects.ObjectEntry]) -> None:
    """Drop exactly what this restore recreates: views over the restored tables, then the tables."""
    present = [t for t in tables if t.qualified in plan.existing]
    if not present:
        return
    views = [e for e in selected if e.tables and e.address and e.address[0] in ("view", "materialized view")]
    try:
        with conn.transaction():
            for view in reversed(views):
                if _exists(conn, view.address):
                    conn.execute(sql.SQL("DROP {} {}").format(sql.SQL(view.address[0].upper()), sql.SQL(view.identity)))
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.SQL(", ").join(_ident(t) for t in present)))
    except psycopg.Error as error:
        detail = error.diag.message_detail or ""
        raise RestoreError(
            f"--clean cannot drop {', '.join(t.qualified for t in present)}: {error.diag.message_primary}"
            f"{' (' + detail.splitlines()[0] + ')' if detail else ''}; objects outside the restore depend on them, "
            "so drop those first or restore into another database"
        ) from None
    plan.notes.append(f"--clean dropped {len(present)} existing tables before recreating them")


def apply_schema(store: SnapshotStore, manifest: dict, target_url: str, plan: RestorePlan, log: Log = print) -> float:
    """Clean (when asked), create extensions, apply pre-data. Returns seconds."""
    started = time.monotonic()
    tables = plan_tables(plan, manifest)
    if plan.mode == "data-only":
        return 0.0
    entries = schema_objects.load_entries(schema_objects_of(store, manifest))
    selected = schema_objects.select_entries(entries, set(plan.tables), partial=bool(plan.requested))
    with pg.connect(target_url, purpose="restore target", autocommit=True) as conn:
        if plan.clean:
            _clean(conn, plan, tables, selected)
        created = _create_extensions(conn, entries, plan)
        # Objects shared by many tables (schemas, types, functions) that the target has already are
        # kept as they are: never dropped, never redefined.
        reused = [
            e for e in selected
            if not e.tables and e.address and (
                (e.kind == "schema" and e.address[1] and e.address[1][0] in created) or _exists(conn, e.address)
            )
        ]
    reused_ids = {e.dump_id for e in reused}
    shown = [e.identity for e in reused if e.kind != "schema"]
    if shown:
        plan.notes.append(f"kept {len(shown)} existing shared objects: {', '.join(shown[:8])}{' …' if len(shown) > 8 else ''}")
    todo = [e for e in selected if e.dump_id not in reused_ids]
    with schema_archive(store, manifest) as archive, pg.libpq_env(target_url) as env:
        listing = pgdump.write_toc_list((e.toc for e in todo), archive.with_suffix(".list"))
        pgdump.run_restore(
            [*_restore_args(_dbname(target_url)), "--section=pre-data", "--single-transaction", f"--use-list={listing}", str(archive)],
            env,
            what="pre-data",
        )
    log(f"pre-data: {len(todo)} objects created ({len(reused)} already present)")
    return round(time.monotonic() - started, 3)


def _dbname(url: str) -> str:
    return conninfo_to_dict(url).get("dbname") or ""


def _post_data_entries(store: SnapshotStore, manifest: dict, plan: RestorePlan) -> list[schema_objects.ObjectEntry]:
    entries = schema_objects.load_entries(schema_objects_of(store, manifest))
    return schema_objects.select_entries(entries, set(plan.tables), partial=bool(plan.requested))


def _own_entries(selected: list[schema_objects.ObjectEntry], table: str) -> list[schema_objects.ObjectEntry]:
    """Objects that belong to `table` alone (its indexes, keys, triggers, comments)."""
    return [e for e in selected if e.tables == (table,)]


# Index builds and foreign-key checks of the post-data step sort whole tables; more memory than
# the server default (64 MB) keeps those sorts in memory. Session-level, allowed for any role.
POST_DATA_SETTINGS = "-c maintenance_work_mem=256MB -c work_mem=64MB"
# A table's indexes are built while the other loaders still load. On a server that shares this
# machine's cores, parallel index-build workers would only compete with those loaders (2M-row
# bench, 2 cores: load 4.04-4.15 s -> 3.89-3.92 s without them); a remote server keeps its own.
SHARED_CORES_SETTINGS = f"{POST_DATA_SETTINGS} -c max_parallel_maintenance_workers=0"


def _on_this_machine(url: str) -> bool:
    host = conninfo_to_dict(url).get("host") or ""
    return host in ("", "localhost", "127.0.0.1", "::1") or host.startswith("/")  # "/...": a local socket


def _restore_post_data(
    archive: Path, entries, target_url: str, *, jobs: int, listing: Path, what: str, settings: str = POST_DATA_SETTINGS
) -> None:
    with pg.libpq_env(target_url) as env:
        env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} {settings}".strip()
        pgdump.write_toc_list((e.toc for e in entries), listing)
        parallel = ["--single-transaction"] if jobs == 1 else [f"--jobs={jobs}"]
        pgdump.run_restore(
            [*_restore_args(_dbname(target_url)), "--section=post-data", *parallel, f"--use-list={listing}", str(archive)],
            env,
            what=what,
        )


def apply_post_data(store: SnapshotStore, manifest: dict, target_url: str, plan: RestorePlan, log: Log = print) -> float:
    """The post-data objects spanning tables (foreign keys), once every table is loaded and indexed.

    Each table's own indexes, keys and triggers were built by `load_tables` right after its load,
    while the other tables were still loading, as `pg_restore -j` does."""
    if plan.mode == "data-only":
        return 0.0
    started = time.monotonic()
    remaining = [e for e in _post_data_entries(store, manifest, plan) if len(e.tables) != 1]
    with schema_archive(store, manifest) as archive:
        _restore_post_data(archive, remaining, target_url, jobs=plan.jobs, listing=archive.with_suffix(".list"),
                           what="post-data (foreign keys)")
    seconds = round(time.monotonic() - started, 3)
    log(f"post-data: foreign keys added and validated in {seconds}s")
    return seconds


# ---- data --------------------------------------------------------------------------------------


@dataclass
class TableLoad:
    table: str
    rows: int
    seconds: float


RENDER_BATCH_ROWS = 8_192  # a few MB of COPY text per batch: small buffers, flat memory


def _rendered(store: SnapshotStore, table: Table, depth: int = 2) -> Iterator[tuple[int, object]]:
    """(rows, COPY text) per stored batch, rendered one batch ahead in a helper thread so that
    reading Parquet and building text overlap with the server parsing the previous batch."""
    pending: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in store.iter_batches(table, batch_size=RENDER_BATCH_ROWS):
                if stop.is_set():
                    return
                if batch.num_rows:
                    pending.put((batch.num_rows, copy_text.batch_to_copy_text(batch, table)))
            pending.put(None)
        except BaseException as error:  # handed to the consumer, which re-raises it
            pending.put(error)

    worker = threading.Thread(target=produce, name=f"render-{table.qualified}", daemon=True)
    worker.start()
    try:
        while (item := pending.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                pending.get_nowait()
            except queue.Empty:
                worker.join(0.05)


def _copy_table(conn: psycopg.Connection, store: SnapshotStore, table: Table, *, freeze: bool) -> int:
    rows = 0
    with conn.cursor().copy(copy_text.copy_in_sql(table, freeze=freeze)) as copy:
        for count, data in _rendered(store, table):
            copy.write(data)
            rows += count
    return rows


def _load_fresh_table(target_url: str, store: SnapshotStore, table: Table) -> TableLoad:
    """One table into a table created by this restore, on its own connection and transaction.

    TRUNCATE of the just-created (empty) table lets COPY FREEZE write rows already frozen, so the
    verification's full scans and later vacuums do not rewrite every page. PostgreSQL cannot
    FREEZE rows routed into partitions: a partitioned table is loaded plainly.
    """
    started = time.monotonic()
    with pg.connect(target_url, purpose="restore target") as conn:
        pgtypes.apply_session_settings(conn)
        conn.commit()
        conn.execute(sql.SQL("TRUNCATE {}").format(pg.own_rows(table)))
        rows = _copy_table(conn, store, table, freeze=not table.partitioned)
        conn.commit()
    return TableLoad(table.qualified, rows, round(time.monotonic() - started, 3))


_FOREIGN_KEYS_SQL = """
SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
FROM pg_constraint c WHERE c.contype = 'f' AND c.conrelid = ANY(%s::regclass[])
ORDER BY 1, 2
"""
_CHECKS_SQL = _FOREIGN_KEYS_SQL.replace("c.contype = 'f'", "c.contype = 'c'")


def _load_into_existing(target_url: str, store: SnapshotStore, plan: RestorePlan, tables: list[Table], log: Log) -> list[TableLoad]:
    """--data-only: one transaction; foreign keys of the restored tables are dropped and re-added."""
    loads = []
    with pg.connect(target_url, purpose="restore target") as conn:
        pgtypes.apply_session_settings(conn)
        conn.commit()
        try:
            with conn.transaction():
                if plan.clean and plan.existing:
                    conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(pg.own_rows(t) for t in tables)))
                regclasses = [_regclass_text(t) for t in tables]
                keys = conn.execute(_FOREIGN_KEYS_SQL, (regclasses,)).fetchall()
                # Rules the snapshot is known to break (--force, or CHECK warnings): those tables'
                # foreign keys and CHECKs come back NOT VALID, as in the source, and are validated
                # only where they hold. A NOT VALID CHECK still refuses new rows: drop it for the load.
                known = plan.quality.get("known", {})
                lenient = {
                    conn.execute("SELECT %s::regclass::text", (_regclass_text(t),)).fetchone()[0]
                    for t in tables if {"foreign_keys", "check_constraints"} & set(known.get(t.qualified, {}))
                }
                carried_checks = [_regclass_text(t) for t in tables if "check_constraints" in known.get(t.qualified, {})]
                checks = conn.execute(_CHECKS_SQL, (carried_checks,)).fetchall()
                unvalidated = []
                for relation, name, _ in [*keys, *checks]:
                    conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.SQL(relation), sql.Identifier(name)))
                for table in tables:
                    started = time.monotonic()
                    rows = _copy_table(conn, store, table, freeze=False)
                    loads.append(TableLoad(table.qualified, rows, round(time.monotonic() - started, 3)))
                    log(f"{table.qualified}: {rows} rows loaded")
                for relation, name, definition in [*keys, *checks]:
                    relax = relation in lenient and not definition.endswith("NOT VALID")
                    conn.execute(
                        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                            sql.SQL(relation), sql.Identifier(name), sql.SQL(definition + (" NOT VALID" if relax else ""))
                        )
                    )
                    if relax:
                        try:
                            with conn.transaction():
                                conn.execute(sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(sql.SQL(relation), sql.Identifier(name)))
                        except (psycopg.errors.ForeignKeyViolation, psycopg.errors.CheckViolation):
                            unvalidated.append(f"{relation}.{name}")
        except psycopg.Error as error:
            raise RestoreError(f"--data-only load into {plan.target} failed, nothing was changed: {_pg_message(error)}") from None
    if keys:
        validated = [k for k in keys if f"{k[0]}.{k[1]}" not in unvalidated]
        plan.notes.append(f"{len(validated)} foreign keys were dropped for the load and added back validated")
    if unvalidated:
        plan.notes.append(f"left NOT VALID over the violations the snapshot carries: {', '.join(unvalidated)}")
    return loads


def _pg_message(error: psycopg.Error) -> str:
    diag = error.diag
    text = diag.message_primary or str(error).strip().splitlines()[0]
    if diag.message_detail:
        text += f" ({diag.message_detail.splitlines()[0][:200]})"
    if diag.context and "COPY" in diag.context:
        text += f" [{diag.context.splitlines()[0][:200]}]"
    return text


def load_tables(store: SnapshotStore, manifest: dict, target_url: str, plan: RestorePlan, log: Log = print) -> list[TableLoad]:
    """Stream every planned table from Parquet into the target."""
    with arrow_pool("system"):
        return _load_tables(store, manifest, target_url, plan, log)


def _load_tables(store: SnapshotStore, manifest: dict, target_url: str, plan: RestorePlan, log: Log) -> list[TableLoad]:
    tables = plan_tables(plan, manifest)
    if plan.mode == "data-only":
        return _load_into_existing(target_url, store, plan, tables, log)
    # Biggest first, so the parallel loaders finish together.
    by_size = sorted(tables, key=lambda t: -manifest["tables"][t.qualified]["rows"])
    selected = _post_data_entries(store, manifest, plan)
    index_settings = SHARED_CORES_SETTINGS if plan.jobs > 1 and _on_this_machine(target_url) else POST_DATA_SETTINGS
    loads: dict[str, TableLoad] = {}

    def one(table: Table, archive: Path) -> TableLoad:
        try:
            done = _load_fresh_table(target_url, store, table)
        except psycopg.Error as error:
            raise RestoreError(f"loading {table.qualified} failed: {_pg_message(error)}") from None
        # The table's own indexes, keys and triggers now, while the other loader keeps loading.
        started = time.monotonic()
        own = _own_entries(selected, table.qualified)
        if own:
            _restore_post_data(archive, own, target_url, jobs=1, listing=archive.with_name(f"post-{uuid.uuid4().hex}.list"),
                               what=f"indexes and keys of {table.qualified}", settings=index_settings)
        done.seconds = round(done.seconds + time.monotonic() - started, 3)
        log(f"{table.qualified}: {done.rows} rows loaded and indexed in {done.seconds}s")
        return done

    with schema_archive(store, manifest) as archive, \
            ThreadPoolExecutor(max_workers=plan.jobs, thread_name_prefix="restore-load") as pool:
        for done in pool.map(lambda t: one(t, archive), by_size):
            loads[done.table] = done
    return [loads[q] for q in plan.tables]


# ---- sequences ---------------------------------------------------------------------------------

_OWNED_SEQUENCES_SQL = """
SELECT s.oid::regclass::text, n.nspname || '.' || t.relname, a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_depend d
JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_class t ON t.oid = d.refobjid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
  AND d.refobjid = ANY(%s::regclass[])
ORDER BY 1
"""


@dataclass
class SequenceSet:
    sequence: str
    table: str | None
    column: str | None
    value: int | None


def owned_sequences(conn: psycopg.Connection, tables: list[Table]) -> list[tuple[str, str, str]]:
    """(sequence, qualified table, column) for every serial/identity column of `tables` in the target."""
    rows = conn.execute(_OWNED_SEQUENCES_SQL, ([_regclass_text(t) for t in tables],)).fetchall()
    return [(seq, table, column) for seq, table, column, _ in rows]


def set_sequences(store: SnapshotStore, manifest: dict, target_url: str, plan: RestorePlan, log: Log = print) -> list[SequenceSet]:
    """Every sequence of the restored tables continues after the restored rows (and never below
    the source's own value, as pg_dump's SEQUENCE SET would leave it)."""
    tables = plan_tables(plan, manifest)
    by_name = {t.qualified: t for t in tables}
    recorded_owned: dict[tuple[str, str], int | None] = {}
    standalone: list[dict] = []
    if stored_path(manifest, dumps.SCHEMA_OBJECTS):
        payload = schema_objects_of(store, manifest)
        for seq in payload["sequences"]:
            if seq["table"]:
                recorded_owned[(seq["table"], seq["column"])] = seq["last_value"]
            elif plan.mode == "full" and not plan.requested:
                standalone.append(seq)
    done = []
    with pg.connect(target_url, purpose="restore target", autocommit=True) as conn:
        for sequence, table, column in owned_sequences(conn, tables):
            high = conn.execute(
                sql.SQL("SELECT max({c}) FROM {t}").format(c=sql.Identifier(column), t=_ident(by_name[table]))
            ).fetchone()[0]
            candidates = [v for v in (high, recorded_owned.get((table, column))) if v is not None]
            value = max(candidates) if candidates else None
            if value is not None:
                conn.execute("SELECT setval(%s::regclass, %s, true)", (sequence, value))
            done.append(SequenceSet(sequence, table, column, value))
        for seq in standalone:
            name = sql.Identifier(seq["schema"], seq["name"]).as_string(conn)
            if seq["last_value"] is not None and conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0]:
                conn.execute("SELECT setval(%s::regclass, %s, true)", (name, seq["last_value"]))
                done.append(SequenceSet(name, None, None, seq["last_value"]))
    log(f"sequences: {len(done)} set past the restored rows")
    return done


def refresh_materialized_views(store: SnapshotStore, manifest: dict, target_url: str, plan: RestorePlan, log: Log = print) -> list[str]:
    """REFRESH the restored materialized views that were populated in the source, in the dump's
    (dependency) order, as pg_restore's MATERIALIZED VIEW DATA entries do; views over tables this
    restore leaves out are not restored, so not refreshed. Snapshots taken before the populated
    views were recorded refresh none."""
    if not stored_path(manifest, dumps.SCHEMA_OBJECTS):
        return []
    payload = schema_objects_of(store, manifest)
    populated = {tuple(view) for view in payload.get("populated_views", [])}
    entries = schema_objects.select_entries(schema_objects.load_entries(payload), set(plan.tables), partial=bool(plan.requested))
    views = [tuple(e.address[1]) for e in entries if e.address and e.address[0] == "materialized view" and tuple(e.address[1]) in populated]
    refreshed = []
    with pg.connect(target_url, purpose="restore target", autocommit=True) as conn:
        for schema, name in views:
            view = sql.Identifier(schema, name)
            # --data-only: the app's migrations may not have created it.
            if conn.execute("SELECT to_regclass(%s)", (view.as_string(conn),)).fetchone()[0] is None:
                continue
            try:
                conn.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}").format(view))
            except psycopg.Error as error:
                raise RestoreError(f"refreshing materialized view {schema}.{name} failed: {error.diag.message_primary}") from None
            refreshed.append(f"{schema}.{name}")
    if refreshed:
        log(f"materialized views: {len(refreshed)} refreshed ({', '.join(refreshed)})")
    return refreshed


# pg_dump's entries for large objects: "BLOB" (PostgreSQL 16 and older) or "BLOB METADATA" (17)
# create them, "BLOBS" holds their contents, "COMMENT - LARGE OBJECT" their comments.
_LARGE_OBJECT_ENTRIES = ("BLOB ", "BLOBS ", "COMMENT - LARGE OBJECT ")


def restore_large_objects(store: SnapshotStore, manifest: dict, target_url: str, plan: RestorePlan, log: Log = print) -> int:
    """The source's large objects, from the snapshot's full dump (streamed, only those entries).

    They belong to no table, so no Parquet file holds them; the schema map records how many the
    source had, and a restore from Parquet would otherwise leave every oid column pointing at
    nothing. Snapshots taken before the count was recorded restore none, as before. Large objects
    of the same oids already in the target are refused by oid, or replaced with `clean`."""
    if not stored_path(manifest, dumps.SCHEMA_OBJECTS):
        return 0
    expected = schema_objects_of(store, manifest).get("large_objects", 0)
    if not expected:
        return 0
    stored = _require_file(manifest, dumps.FULL_DUMP, "full pg_dump (it holds the large objects)")

    def large_objects(listed: list[pgdump.TocEntry]) -> list[pgdump.TocEntry]:
        wanted = [e for e in listed if e.text.startswith(_LARGE_OBJECT_ENTRIES)]
        if not plan.clean:  # with clean, pg_restore unlinks each one first
            _refuse_existing_large_objects(target_url, [e.oid for e in wanted if e.text.startswith("BLOB ")])
        return wanted

    _restore_from_full_dump(store, stored, target_url, choose=large_objects, clean=plan.clean, what="large objects from the full dump")
    log(f"large objects: {expected} restored from the full dump")
    return expected


def _refuse_existing_large_objects(target_url: str, oids: list[int]) -> None:
    with pg.connect(target_url, purpose="restore target") as conn:
        taken = [r[0] for r in conn.execute(
            "SELECT oid FROM pg_largeobject_metadata WHERE oid = ANY(%s::oid[]) ORDER BY 1 LIMIT 5", (oids,)
        ).fetchall()]
    if taken:
        raise RestoreError(
            f"the target already has large objects with the snapshot's oids ({', '.join(map(str, taken))}"
            f"{', …' if len(taken) == 5 else ''}); restore with --clean to replace them"
        )


# ---- the full pg_dump --------------------------------------------------------------------------


def restore_dump(store: SnapshotStore, manifest: dict, target_url: str, plan: RestorePlan, log: Log = print) -> float:
    """pg_restore of the snapshot's full dump, streamed from storage; any error fails the restore."""
    started = time.monotonic()
    stored = _require_file(manifest, dumps.FULL_DUMP, "full pg_dump")
    entries = []
    if stored_path(manifest, dumps.SCHEMA_OBJECTS):
        entries = schema_objects.load_entries(schema_objects_of(store, manifest))
    with pg.connect(target_url, purpose="restore target", autocommit=True) as conn:
        _create_extensions(conn, entries, plan)
    # Every entry but extensions (made above, or by the provider; --clean must not drop them) and
    # what a managed provider refuses: comments on extensions someone else owns, and ACLs.
    dropped = ("EXTENSION ", "COMMENT - EXTENSION ", "ACL ", "DEFAULT ACL ") if entries else ("COMMENT - EXTENSION ", "ACL ", "DEFAULT ACL ")
    _restore_from_full_dump(
        store, stored, target_url, choose=lambda listed: [e for e in listed if not e.text.startswith(dropped)],
        clean=plan.clean, what="full dump",
    )
    seconds = round(time.monotonic() - started, 3)
    log(f"pg_restore of the full dump finished in {seconds}s")
    return seconds


def _restore_from_full_dump(
    store: SnapshotStore, stored: str, target_url: str, *,
    choose: Callable[[list[pgdump.TocEntry]], list[pgdump.TocEntry]], clean: bool, what: str,
) -> None:
    """pg_restore, in one transaction, of the entries `choose` keeps of the dump's table of
    contents (read from the head of the stream); the dump is streamed from storage, never held
    in memory or left decrypted on disk. `clean` drops each restored object first."""
    with tempfile.TemporaryDirectory(prefix="skillswap-restore-") as tmp, pg.libpq_env(target_url) as env:
        with store.reader(stored) as head:
            chosen = choose(subprocess_list(head, env))
        listing = pgdump.write_toc_list(chosen, Path(tmp) / "full.list")
        args = [*_restore_args(_dbname(target_url)), "--single-transaction", f"--use-list={listing}"]
        if clean:
            args += ["--clean", "--if-exists"]
        with store.reader(stored) as source:
            pgdump.run_restore(args, env, source=pgdump.iter_chunks(source), what=what)


def subprocess_list(handle, env: dict[str, str]) -> list[pgdump.TocEntry]:
    """`pg_restore --list` of an archive read from a stream."""
    import io

    sink = io.BytesIO()
    pgdump.run_restore(["--list"], env, source=pgdump.iter_chunks(handle), sink=sink, what="reading the dump's contents")
    return pgdump.parse_toc(sink.getvalue().decode())


def finish_restore(store: SnapshotStore, manifest: dict, target_url: str, plan: RestorePlan, log: Log = print) -> dict[str, float]:
    """What follows the post-data: sequences, materialized views, large objects; seconds of each."""
    timings = {}
    for name, step in (
        ("sequences", set_sequences), ("materialized_views", refresh_materialized_views), ("large_objects", restore_large_objects),
    ):
        started = time.monotonic()
        step(store, manifest, target_url, plan, log)
        timings[name] = round(time.monotonic() - started, 3)
    return timings


# ---- all steps ---------------------------------------------------------------------------------


def restore_snapshot(
    store: SnapshotStore, target_url: str, *, options: RestoreOptions | None = None, log: Log = print, report: bool = False
):
    """Every step in this process (the Dagster job runs the same steps as ops); returns the report.
    `report=True` also writes the data-quality report of the restored database into the snapshot."""
    from . import restore_verify

    options = options or RestoreOptions(snapshot=store.partition_key)
    manifest = read_manifest(store)
    plan = plan_restore(store, manifest, target_url, options)
    for line in restore_quality.QualityGate.from_dict(plan.quality).lines():
        log(line)
    log(integrity.check_restore_inputs(store, manifest, plan).line())  # before anything is written
    timings: dict[str, float] = {}
    if plan.source == "dump":
        timings["pg_restore"] = restore_dump(store, manifest, target_url, plan, log)
        loads = []
    else:
        timings["pre_data"] = apply_schema(store, manifest, target_url, plan, log)
        started = time.monotonic()
        loads = load_tables(store, manifest, target_url, plan, log)
        timings["load"] = round(time.monotonic() - started, 3)
        timings["post_data"] = apply_post_data(store, manifest, target_url, plan, log)
        timings.update(finish_restore(store, manifest, target_url, plan, log))
    return restore_verify.require_ok(
        restore_verify.verify(manifest, target_url, plan, loads, timings=timings, log=log, store=store, write_report=report)
    )


__all__ = [
    "IncompleteSnapshot",
    "RestoreError",
    "RestoreOptions",
    "RestorePlan",
    "TableLoad",
    "apply_post_data",
    "apply_schema",
    "finish_restore",
    "load_tables",
    "open_snapshot",
    "plan_restore",
    "restore_dump",
    "restore_snapshot",
    "set_sequences",
]
