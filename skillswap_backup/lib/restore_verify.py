"""Verify a restored database against its snapshot, and the restore report.

Checks, all in the target after the restore:
- per table, the row count and the content checksum (`checksum.checksum_sql`, over every column)
  equal what the backup computed inside the source snapshot;
- every foreign key of the restored tables exists and is validated (as it was in the source);
- a write smoke test: for each table with a sequence or identity, an insert in a transaction that
  is rolled back must get a fresh key (a sequence left behind the rows would collide). Like any
  rolled-back insert, it uses up one sequence value;
- the snapshot's data-quality suites, run on the restored tables (`restore_quality`).
Any difference is a problem; a report with problems fails the restore. Violations the snapshot's
own quality verdict recorded (restored with --force, or non-blocking ones) are carried over:
listed in the report, not problems.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from . import checksum, pg
from .catalog import Table


class RestoreVerificationFailed(Exception):
    """The restored database differs from the snapshot; the message names what differs."""


@dataclass
class TableReport:
    table: str
    rows: int
    expected_rows: int
    checksum: str
    expected_checksum: str | None
    seconds: float | None
    ok: bool


@dataclass
class RestoreReport:
    partition_key: str
    target: str
    mode: str
    source: str
    tables: list[TableReport]
    added_parents: list[str]
    foreign_keys: int
    smoke: list[str]
    problems: list[str]
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    quality: dict = field(default_factory=dict)  # restore_quality.RestoreQuality.to_dict()
    carried_over: list[str] = field(default_factory=list)  # known violations, reported not failed

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}

    @classmethod
    def from_dict(cls, data: dict) -> RestoreReport:
        fields = {k: v for k, v in data.items() if k != "ok"}
        return cls(**{**fields, "tables": [TableReport(**t) for t in data["tables"]]})

    def lines(self) -> list[str]:
        out = [
            f"restore of snapshot {self.partition_key} into {self.target} ({self.mode}, from {self.source})",
        ]
        if self.added_parents:
            out.append(f"foreign-key parents added: {', '.join(self.added_parents)}")
        out.append(f"{'table':42} {'rows':>10} {'checksum':>22} {'seconds':>8}  ok")
        for t in self.tables:
            seconds = "-" if t.seconds is None else f"{t.seconds:.2f}"
            out.append(f"{t.table:42} {t.rows:>10} {t.checksum:>22} {seconds:>8}  {'yes' if t.ok else 'NO'}")
        total = sum(t.rows for t in self.tables)
        out.append(f"{'total: ' + str(len(self.tables)) + ' tables':42} {total:>10}")
        out.append(f"foreign keys valid: {self.foreign_keys}; write smoke test: {len(self.smoke)} tables")
        if self.timings:
            out.append("steps: " + ", ".join(f"{k} {v:.2f}s" for k, v in self.timings.items()))
        out += [f"note: {n}" for n in self.notes]
        out += [f"carried over from the snapshot: {c}" for c in self.carried_over]
        if self.quality:
            from .restore_quality import RestoreQuality

            out += RestoreQuality(**{k: v for k, v in self.quality.items() if k != "ok"}).lines()
        carried = " (violations the snapshot already had are carried over, listed above)" if self.carried_over or (
            self.quality.get("carried_over")
        ) else ""
        out.append(f"verified: every table matches the snapshot{carried}" if self.ok else "FAILED: " + "; ".join(self.problems))
        return out

    def markdown(self) -> str:
        rows = ["| table | rows | checksum | seconds | ok |", "|---|---:|---:|---:|---|"]
        for t in self.tables:
            rows.append(f"| {t.table} | {t.rows} | {t.checksum} | {'-' if t.seconds is None else t.seconds} | {'yes' if t.ok else '**NO**'} |")
        return "\n".join(rows)


_FOREIGN_KEYS_SQL = """
SELECT n.nspname || '.' || t.relname,
       array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(num, i)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num ORDER BY k.i),
       rn.nspname || '.' || r.relname,
       array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(num, i)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.num ORDER BY k.i),
       c.convalidated
FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_class r ON r.oid = c.confrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace
WHERE c.contype = 'f' AND c.conrelid = ANY(%s::regclass[])
"""


def _regclass(table: Table) -> str:
    return sql.Identifier(table.schema, table.name).as_string(None)


def check_foreign_keys(conn: psycopg.Connection, tables: list[Table]) -> tuple[int, list[str]]:
    restored = {t.qualified for t in tables}
    found = {
        (child, tuple(cols), parent, tuple(ref_cols)): validated
        for child, cols, parent, ref_cols, validated in conn.execute(_FOREIGN_KEYS_SQL, ([_regclass(t) for t in tables],))
    }
    problems, checked = [], 0
    for table in tables:
        for fk in table.foreign_keys:
            if fk.ref_qualified not in restored:
                continue
            key = (table.qualified, fk.columns, fk.ref_qualified, fk.ref_columns)
            if key not in found:
                problems.append(f"foreign key {fk.name} of {table.qualified} is missing")
            elif fk.validated and not found[key]:
                problems.append(f"foreign key {fk.name} of {table.qualified} is not validated")
            else:
                checked += 1
    return checked, problems


def _text_like(pg_type: str) -> bool:
    return pg_type.startswith(("text", "character varying", "varchar", "citext"))


def _index_columns(conn: psycopg.Connection, table: Table, index: str) -> list[str]:
    """Columns of the unique index a violation names (a constraint's index shares its name)."""
    regclass = sql.Identifier(table.schema, index).as_string(conn)
    return [r[0] for r in conn.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indexrelid = to_regclass(%s)", (regclass,)
    ).fetchall()]


def smoke_test(conn: psycopg.Connection, table: Table, sequence: str, column: str) -> tuple[str | None, str | None]:
    """(what happened, problem): insert a copy of a row (unique text values replaced) with a fresh
    key from the sequence, inside a transaction that is rolled back."""
    generated = {c.name for c in table.columns if c.generated}
    unique_text = {
        name for key in (*table.unique_keys, table.primary_key) for name in key
        if name != column and _text_like(table.column(name).base_type)
    }
    columns = [c for c in table.columns if c.name not in generated and c.name != column]
    ident = sql.Identifier(table.schema, table.name)
    values = [
        sql.SQL("left(md5(random()::text), 8)") if c.name in unique_text else sql.Identifier(c.name) for c in columns
    ]
    insert = sql.SQL("INSERT INTO {t} ({cols}) SELECT {vals} FROM {t} LIMIT 1 RETURNING {key}").format(
        t=ident, cols=sql.SQL(", ").join(sql.Identifier(c.name) for c in columns), vals=sql.SQL(", ").join(values),
        key=sql.Identifier(column),
    ) if columns else sql.SQL("INSERT INTO {t} DEFAULT VALUES RETURNING {key}").format(t=ident, key=sql.Identifier(column))
    high = conn.execute(sql.SQL("SELECT max({c}) FROM {t}").format(c=sql.Identifier(column), t=ident)).fetchone()[0]
    before = conn.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(sql.SQL(sequence))).fetchone()
    try:
        return _smoke_insert(conn, table, sequence, column, insert, high)
    finally:
        # A rolled-back insert still uses up a sequence value; put it back so the app's next
        # insert gets exactly the id it would have got in the source.
        conn.rollback()
        conn.execute("SELECT setval(%s::regclass, %s, %s)", (sequence, *before))
        conn.commit()


def _smoke_insert(conn, table: Table, sequence: str, column: str, insert, high) -> tuple[str | None, str | None]:
    ident = sql.Identifier(table.schema, table.name)
    if high is None:
        insert = sql.SQL("INSERT INTO {t} DEFAULT VALUES RETURNING {key}").format(t=ident, key=sql.Identifier(column))
    try:
        with conn.transaction(force_rollback=True):
            row = conn.execute(insert).fetchone()
        new = row[0] if row else None
        if new is not None and high is not None and new <= high:
            return None, f"{table.qualified}: the sequence of {column} gave {new}, not above the restored maximum {high}"
        return f"{table.qualified}: insert got {column}={new}", None
    except pg_errors.UniqueViolation as error:
        constraint = error.diag.constraint_name or ""
        if column in _index_columns(conn, table, constraint):
            return None, f"{table.qualified}: a new row's {column} collides with a restored one ({constraint}); its sequence was not advanced"
    except psycopg.Error:
        pass
    # The row could not be copied (other unique keys, checks, …): compare the sequence directly.
    last, called, step = conn.execute(
        sql.SQL("SELECT last_value, is_called, (SELECT seqincrement FROM pg_sequence WHERE seqrelid = %s::regclass) FROM {}").format(
            sql.SQL(sequence)
        ),
        (sequence,),
    ).fetchone()
    following = last + step if called else last
    if high is not None and following <= high:
        return None, f"{table.qualified}: the next {column} from {sequence} would be {following}, not above {high}"
    return f"{table.qualified}: next {column} {following} > {high}", None


def verify(
    manifest: dict, target_url: str, plan, loads: list, *, timings: dict | None = None, log=print, store=None,
    write_report: bool = False,
) -> RestoreReport:
    """Check the restored target. With `store` (the snapshot's), a target proven identical to the
    snapshot takes the snapshot's data-quality results instead of a second pass of the suites;
    `write_report` also writes the restore's data-quality report into the snapshot."""
    from . import restore_quality
    from .restore import owned_sequences, plan_tables

    started = time.monotonic()
    known = plan.quality.get("known", {})
    carried: list[str] = []
    tables = plan_tables(plan, manifest)
    load_seconds = {load.table: load.seconds for load in loads}
    with ThreadPoolExecutor(max_workers=max(1, plan.jobs)) as pool:
        sums = list(pool.map(
            lambda t: checksum.measure(
                target_url, t, checksum.method_of(manifest["tables"][t.qualified]), purpose="restore target"
            ),
            tables,
        ))
    problems: list[str] = []
    reports = []
    for table, (count, content) in zip(tables, sums):
        expected = manifest["tables"][table.qualified]
        ok = count == expected["source_rows"] == expected["rows"] and content == expected["checksum"]
        if count != expected["source_rows"] and "row_count" in known.get(table.qualified, {}) and count == expected["rows"]:
            carried.append(f"{table.qualified}: {count} rows restored as the snapshot holds them, the source had {expected['source_rows']}")
        elif count != expected["source_rows"]:
            problems.append(f"{table.qualified}: {count} rows restored, the source had {expected['source_rows']}")
        elif content != expected["checksum"]:
            problems.append(f"{table.qualified}: content checksum {content} differs from the source's {expected['checksum']}")
        reports.append(TableReport(table.qualified, count, expected["source_rows"], content, expected["checksum"], load_seconds.get(table.qualified), ok))
    smoke: list[str] = []
    with pg.connect(target_url, purpose="restore target") as conn:
        checked, fk_problems = check_foreign_keys(conn, tables)
        for problem in fk_problems:
            # Orphan rows the snapshot carried keep their foreign key NOT VALID.
            unvalidated = [q for q, families in known.items() if "foreign_keys" in families and problem.endswith(f" of {q} is not validated")]
            (carried if unvalidated else problems).append(problem)
        conn.commit()
        by_name = {t.qualified: t for t in tables}
        for sequence, table, column in owned_sequences(conn, tables):
            done, problem = smoke_test(conn, by_name[table], sequence, column)
            if problem:
                problems.append(problem)
            else:
                smoke.append(done)
    all_timings = {**(timings or {}), "verify": round(time.monotonic() - started, 3)}
    started = time.monotonic()
    identical = not problems and not carried and all(r.ok for r in reports) and len(reports) == len(plan.tables)
    stored = restore_quality.snapshot_results(store, manifest, plan.tables) if store is not None else None
    if identical and stored is not None and not plan.validate_target:
        quality, results = restore_quality.snapshot_verdict(stored, known), stored
    else:
        quality, results = restore_quality.validate_target(manifest, target_url, plan.tables, known)
    if store is not None and write_report:
        quality.report = restore_quality.write_report(store, quality, results, database=plan.target.rsplit("/", 1)[-1], log=log)
    problems += [f"data quality: {problem}" for problem in quality.problems]
    all_timings["quality"] = round(time.monotonic() - started, 3)
    report = RestoreReport(
        partition_key=plan.partition_key,
        target=plan.target,
        mode=plan.mode,
        source=plan.source,
        tables=reports,
        added_parents=plan.added_parents,
        foreign_keys=checked,
        smoke=smoke,
        problems=problems,
        notes=plan.notes,
        timings=all_timings,
        quality=quality.to_dict(),
        carried_over=carried,
    )
    for line in quality.lines():
        log(line)
    log("verification: " + ("every table matches the snapshot" if report.ok else "; ".join(problems)))
    return report


def require_ok(report: RestoreReport) -> RestoreReport:
    if not report.ok:
        raise RestoreVerificationFailed(
            f"the restore into {report.target} does not match snapshot {report.partition_key}: " + "; ".join(report.problems)
        )
    return report
