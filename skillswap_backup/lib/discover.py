"""Reflect a live PostgreSQL database into a Catalog (tables, columns, keys, checks, tiers)."""

from __future__ import annotations

import fnmatch
import json
from datetime import datetime, timezone
from pathlib import Path

import psycopg

from .catalog import Catalog, CheckConstraint, Column, ForeignKey, Table

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")

_TABLES_SQL = """
SELECT c.oid, n.nspname, c.relname, greatest(c.reltuples, 0)::bigint, c.relkind = 'p'
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname <> ALL (%s) AND n.nspname NOT LIKE 'pg\\_temp\\_%%' AND n.nspname NOT LIKE 'pg\\_toast%%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY n.nspname, c.relname
"""

# Foreign tables are not read, as pg_dump leaves them (its --include-foreign-data is off by default):
# their rows live on another server or in a file, which may be unreachable or huge.
_FOREIGN_TABLES_SQL = """
SELECT n.nspname || '.' || c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'f'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1
"""

_COLUMNS_SQL = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod),
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod)
            ELSE format_type(a.atttypid, a.atttypmod) END,
       coalesce(et.typtype, bt.typtype), bt.typcategory = 'A', a.attnotnull,
       a.attgenerated <> '', a.attidentity::text,
       coalesce((SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e
                 WHERE e.enumtypid = coalesce(et.oid, bt.oid)), '{}')
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
LEFT JOIN pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

_CONSTRAINTS_SQL = """
SELECT con.contype, con.conname,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i),
       rn.nspname, rc.relname,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i),
       con.convalidated, pg_get_constraintdef(con.oid)
FROM pg_constraint con
LEFT JOIN pg_class rc ON rc.oid = con.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE con.conrelid = %s
ORDER BY con.conname
"""

_UNIQUE_INDEXES_SQL = """
SELECT ARRAY(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o)
FROM pg_index i
WHERE i.indrelid = %s AND i.indisunique AND NOT i.indisprimary
  AND i.indpred IS NULL AND i.indexprs IS NULL
"""

_DOMAIN_CHECKS_SQL = """
SELECT a.attname, t.typname || '.' || con.conname, pg_get_constraintdef(con.oid)
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid AND t.typtype = 'd'
JOIN pg_constraint con ON con.contypid = t.oid AND con.contype = 'c'
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
"""


def load_tier_policy(path: Path) -> dict[str, str]:
    """Map table name (or schema.table) to tier; key "*" holds the default tier."""
    raw = json.loads(path.read_text())
    tiers = {"*": raw.get("default", "important")}
    for tier in ("critical", "important", "optional"):
        for name in raw.get(tier, []):
            tiers[name] = tier
    return tiers


def tier_for(schema: str, name: str, policy: dict[str, str]) -> str:
    qualified = f"{schema}.{name}"
    if qualified in policy:
        return policy[qualified]
    if schema == "public" and name in policy:
        return policy[name]
    return policy["*"]


def _selected(qualified: str, include: list[str], exclude: list[str]) -> bool:
    def matches(patterns: list[str]) -> bool:
        bare = qualified.split(".", 1)[1] if qualified.startswith("public.") else qualified
        return any(fnmatch.fnmatchcase(qualified, p) or fnmatch.fnmatchcase(bare, p) for p in patterns)

    return (not include or matches(include)) and not matches(exclude)


def _quote_ident(conn: psycopg.Connection, name: str) -> str:
    return conn.execute("SELECT quote_ident(%s)", (name,)).fetchone()[0]


def foreign_tables(conn: psycopg.Connection) -> list[str]:
    """Qualified names of the foreign tables: their definitions are in the schema dump (and
    restored), their rows are not backed up."""
    return [row[0] for row in conn.execute(_FOREIGN_TABLES_SQL).fetchall()]


def reflect(
    conn: psycopg.Connection,
    *,
    tier_policy: dict[str, str],
    include: list[str] | None = None,
    exclude: list[str] | None = None,
) -> Catalog:
    tables = []
    for oid, schema, name, estimate, partitioned in conn.execute(_TABLES_SQL, (list(SYSTEM_SCHEMAS),)).fetchall():
        if not _selected(f"{schema}.{name}", include or [], exclude or []):
            continue
        columns = tuple(
            Column(
                name=row[0], pg_type=row[1], base_type=row[2], type_kind=row[3], is_array=row[4],
                not_null=row[5], generated=row[6], identity=row[7], enum_values=tuple(row[8]),
            )
            for row in conn.execute(_COLUMNS_SQL, (oid,)).fetchall()
        )
        primary_key: tuple[str, ...] = ()
        unique: list[tuple[str, ...]] = []
        fks, checks = [], []
        for contype, conname, cols, ref_schema, ref_table, ref_cols, validated, definition in conn.execute(
            _CONSTRAINTS_SQL, (oid,)
        ).fetchall():
            if contype == "p":
                primary_key = tuple(cols)
            elif contype == "u":
                unique.append(tuple(cols))
            elif contype == "f":
                fks.append(ForeignKey(conname, tuple(cols), ref_schema, ref_table, tuple(ref_cols), validated))
            elif contype == "c":
                checks.append(CheckConstraint(conname, definition))
        for (cols,) in conn.execute(_UNIQUE_INDEXES_SQL, (oid,)).fetchall():
            if tuple(cols) not in unique:
                unique.append(tuple(cols))
        for column, conname, definition in conn.execute(_DOMAIN_CHECKS_SQL, (oid,)).fetchall():
            # A domain's CHECK speaks of VALUE; restated on the column it reads like a table check.
            checks.append(CheckConstraint(conname, definition.replace("VALUE", _quote_ident(conn, column))))
        tables.append(
            Table(
                schema=schema, name=name, columns=columns, primary_key=primary_key,
                unique_keys=tuple(unique), foreign_keys=tuple(fks), checks=tuple(checks),
                tier=tier_for(schema, name, tier_policy), estimated_rows=int(estimate),
                partitioned=partitioned,
            )
        )
    return Catalog(
        database=conn.info.dbname,
        server_version=conn.execute("SHOW server_version").fetchone()[0],
        discovered_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        tables=tuple(tables),
    )
