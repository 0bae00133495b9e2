"""Which tables each object of the schema dump belongs to, so a restore can pick a subset.

`pg_restore -l` lists a dump's objects (its TOC) but not their dependencies. At backup time,
inside the same snapshot as the dump, `annotate` asks the source's catalogs which tables every
listed object is attached to (an index, a constraint, a trigger, a column default, an owned
sequence, a view over the table, a comment on any of these) and saves that next to the dump as
`schema/objects.json`. A restore of some tables then keeps an object only when every table it is
attached to is restored; objects attached to no table (schemas, types, domains, functions) are
shared and kept. Sequence values are recorded too, because a schema-only dump has none, and so
is which materialized views were populated (a schema-only dump creates them empty) and how many
large objects the source held (they are in the full dump only).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from .pgdump import TocEntry

OBJECTS_FORMAT = 1

# Objects are walked through pg_depend, through a view's rewrite rules, and across views; the
# tables reached (relkind r/p) are the ones the object is attached to. A partition (and what is
# attached to it) belongs to its partitioned root, the catalog table its rows are restored into.
# A foreign table is no such table: its rows live elsewhere and are never backed up (as with
# pg_dump), so it and what is attached to it are shared schema objects, recreated like a view.
_ATTACHED_SQL = """
WITH RECURSIVE walk(id, classid, objid, start) AS (
    SELECT id, classid, objid, true FROM unnest(%(ids)s::int[], %(classids)s::oid[], %(objids)s::oid[]) AS e(id, classid, objid)
    UNION
    SELECT w.id, x.refclassid, x.refobjid, false
    FROM walk w
    CROSS JOIN LATERAL (
        SELECT d.refclassid, d.refobjid FROM pg_depend d
        WHERE d.classid = w.classid AND d.objid = w.objid AND d.deptype IN ('n', 'a', 'i')
        UNION ALL
        SELECT 'pg_rewrite'::regclass, r.oid FROM pg_rewrite r
        WHERE w.classid = 'pg_class'::regclass AND r.ev_class = w.objid
    ) x
    WHERE w.start OR w.classid = 'pg_rewrite'::regclass
       OR (w.classid = 'pg_class'::regclass
           AND EXISTS (SELECT 1 FROM pg_class v WHERE v.oid = w.objid AND v.relkind IN ('v', 'm')))
)
SELECT w.id, coalesce(array_agg(DISTINCT n.nspname || '.' || r.relname) FILTER (WHERE c.oid IS NOT NULL), '{}')
FROM walk w
LEFT JOIN pg_class c ON w.classid = 'pg_class'::regclass AND c.oid = w.objid AND c.relkind IN ('r', 'p')
LEFT JOIN pg_class r ON r.oid = CASE WHEN c.relispartition THEN pg_partition_root(c.oid) ELSE c.oid END
LEFT JOIN pg_namespace n ON n.oid = r.relnamespace
GROUP BY w.id
"""

# The reverse walk: which tables use a shared object (a type, a domain, a function, a sequence)
# through columns, defaults, triggers, constraints, indexes or other shared objects.
_USED_BY_SQL = """
WITH RECURSIVE up(id, classid, objid) AS (
    SELECT id, classid, objid FROM unnest(%(ids)s::int[], %(classids)s::oid[], %(objids)s::oid[]) AS e(id, classid, objid)
    UNION
    SELECT u.id, x.classid, x.objid
    FROM up u
    CROSS JOIN LATERAL (
        SELECT d.classid, d.objid FROM pg_depend d
        WHERE d.refclassid = u.classid AND d.refobjid = u.objid AND d.deptype IN ('n', 'a', 'i')
        UNION ALL
        SELECT 'pg_type'::regclass, k.contypid FROM pg_constraint k
        WHERE u.classid = 'pg_constraint'::regclass AND k.oid = u.objid AND k.contypid <> 0
    ) x
    WHERE NOT (u.classid = 'pg_class'::regclass
               AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = u.objid AND c.relkind IN ('r', 'p', 'f', 'v', 'm')))
)
SELECT u.id, array_agg(DISTINCT n.nspname || '.' || r.relname)
FROM up u
CROSS JOIN LATERAL (
    SELECT u.objid WHERE u.classid = 'pg_class'::regclass
    UNION ALL SELECT a.adrelid FROM pg_attrdef a WHERE u.classid = 'pg_attrdef'::regclass AND a.oid = u.objid
    UNION ALL SELECT t.tgrelid FROM pg_trigger t WHERE u.classid = 'pg_trigger'::regclass AND t.oid = u.objid
    UNION ALL SELECT k.conrelid FROM pg_constraint k WHERE u.classid = 'pg_constraint'::regclass AND k.oid = u.objid
    UNION ALL SELECT i.indrelid FROM pg_index i WHERE u.classid = 'pg_class'::regclass AND i.indexrelid = u.objid
) owner(rel)
JOIN pg_class c ON c.oid = owner.rel AND c.relkind IN ('r', 'p')
JOIN pg_class r ON r.oid = CASE WHEN c.relispartition THEN pg_partition_root(c.oid) ELSE c.oid END
JOIN pg_namespace n ON n.oid = r.relnamespace
GROUP BY u.id
"""

# How COMMENT entries name table-attached objects: "TABLE x", "COLUMN x.c", "INDEX i",
# "CONSTRAINT c ON x", … with identifiers quoted as pg_dump's fmtId (= quote_ident) does.
_DETAILS_SQL = """
SELECT e.id,
       a.type, a.object_names, a.object_args,
       i.identity,
       CASE e.classid
           WHEN 'pg_class'::regclass THEN (SELECT array[
                   CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'TABLE' WHEN 'v' THEN 'VIEW'
                       WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'i' THEN 'INDEX' WHEN 'I' THEN 'INDEX'
                       WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END
                   || ' ' || quote_ident(c.relname),
                   'COLUMN ' || quote_ident(c.relname) || '.',
                   'SEQUENCE OWNED BY ' || n.nspname || ' ' || c.relname]
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = e.objid)
           WHEN 'pg_constraint'::regclass THEN (SELECT array['CONSTRAINT ' || quote_ident(k.conname) || ' ON ' || quote_ident(c.relname)]
               FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid WHERE k.oid = e.objid)
           WHEN 'pg_trigger'::regclass THEN (SELECT array['TRIGGER ' || quote_ident(t.tgname) || ' ON ' || quote_ident(c.relname)]
               FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE t.oid = e.objid)
           WHEN 'pg_policy'::regclass THEN (SELECT array['POLICY ' || quote_ident(p.polname) || ' ON ' || quote_ident(c.relname)]
               FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE p.oid = e.objid)
           WHEN 'pg_rewrite'::regclass THEN (SELECT array['RULE ' || quote_ident(r.rulename) || ' ON ' || quote_ident(c.relname)]
               FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class WHERE r.oid = e.objid)
       END,
       CASE e.classid WHEN 'pg_class'::regclass THEN (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = e.objid)
                      WHEN 'pg_constraint'::regclass THEN (SELECT n.nspname FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace WHERE k.oid = e.objid)
                      ELSE i.schema END,
       CASE WHEN e.classid = 'pg_extension'::regclass THEN (SELECT x.extname FROM pg_extension x WHERE x.oid = e.objid) END,
       CASE WHEN e.classid = 'pg_extension'::regclass THEN (SELECT n.nspname FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace WHERE x.oid = e.objid) END
FROM unnest(%(ids)s::int[], %(classids)s::oid[], %(objids)s::oid[]) AS e(id, classid, objid)
CROSS JOIN LATERAL pg_identify_object_as_address(e.classid, e.objid, 0) a
CROSS JOIN LATERAL pg_identify_object(e.classid, e.objid, 0) i
"""

_SEQUENCES_SQL = """
SELECT n.nspname, c.relname, tn.nspname || '.' || t.relname, a.attname,
       CASE WHEN has_sequence_privilege(c.oid, 'SELECT') THEN pg_sequence_last_value(c.oid) END
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
     AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
LEFT JOIN pg_class t ON t.oid = d.refobjid
LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_class'::regclass AND x.objid = c.oid AND x.deptype = 'e')
ORDER BY 1, 2
"""

# pg_dump refreshes exactly these (its MATERIALIZED VIEW DATA entries); WITH NO DATA stays empty.
_POPULATED_VIEWS_SQL = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'm' AND c.relispopulated ORDER BY 1, 2
"""

PG_CLASS, PG_EXTENSION, PG_NAMESPACE = 1259, 3079, 2615


def annotate(conn: psycopg.Connection, toc: list[TocEntry]) -> dict:
    """The objects.json payload for a schema dump's TOC, read in the dump's snapshot."""
    objects = [e for e in toc if e.tableoid]
    params = {
        "ids": [e.dump_id for e in objects],
        "classids": [e.tableoid for e in objects],
        "objids": [e.oid for e in objects],
    }
    attached = dict(conn.execute(_ATTACHED_SQL, params).fetchall())
    details = {row[0]: row[1:] for row in conn.execute(_DETAILS_SQL, params).fetchall()}
    shared = [e for e in objects if not attached.get(e.dump_id) and e.tableoid not in (PG_EXTENSION, PG_NAMESPACE)]
    used_by = dict(conn.execute(_USED_BY_SQL, {
        "ids": [e.dump_id for e in shared], "classids": [e.tableoid for e in shared], "objids": [e.oid for e in shared],
    }).fetchall())
    entries = []
    # COMMENT and SEQUENCE OWNED BY entries carry no oid; they follow the object their text names.
    prefixes: list[tuple[str, list[str], bool]] = []  # (text prefix, tables, prefix-only match)
    for entry in objects:
        address_type, names, args, identity, comment_keys, schema, ext_name, ext_schema = details.get(
            entry.dump_id, (None,) * 8
        )
        tables = sorted(attached.get(entry.dump_id, []))
        record = {
            "id": entry.dump_id,
            "line": entry.line,
            "tables": tables,
            "kind": _kind(entry),
            "address": [address_type, list(names or []), list(args or [])] if address_type else None,
            "identity": identity,
            "schema": address_schema(address_type, names, schema),
            "used_by": sorted(used_by.get(entry.dump_id, [])),
        }
        if entry.tableoid == PG_EXTENSION:
            record["extension"] = {"name": ext_name, "schema": ext_schema}
        entries.append(record)
        for key in comment_keys or []:
            if key.startswith("SEQUENCE OWNED BY "):
                prefixes.append((key + " ", tables, False))
            elif key.startswith("COLUMN "):
                prefixes.append((f"COMMENT {schema} {key}", tables, True))
            else:
                prefixes.append((f"COMMENT {schema} {key} ", tables, False))
    for entry in toc:
        if entry.tableoid:
            continue
        tables: list[str] = []
        for prefix, owners, _ in prefixes:
            if entry.text.startswith(prefix):
                tables = owners
                break
        entries.append({"id": entry.dump_id, "line": entry.line, "tables": tables, "kind": _kind(entry),
                        "address": None, "identity": None, "schema": None, "used_by": []})
    position = {e.dump_id: i for i, e in enumerate(toc)}
    entries.sort(key=lambda record: position[record["id"]])
    sequences = [
        {"schema": s, "name": n, "table": t, "column": c, "last_value": v}
        for s, n, t, c, v in conn.execute(_SEQUENCES_SQL).fetchall()
    ]
    populated_views = [list(row) for row in conn.execute(_POPULATED_VIEWS_SQL).fetchall()]
    large_objects = conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()[0]
    return {
        "format": OBJECTS_FORMAT, "entries": entries, "sequences": sequences,
        "populated_views": populated_views, "large_objects": large_objects,
    }


def address_schema(address_type: str | None, names, schema: str | None) -> str | None:
    """The schema an object lives in (a schema entry: the schema itself)."""
    if address_type == "schema":
        return names[0] if names else None
    return schema


def _kind(entry: TocEntry) -> str:
    if entry.tableoid == PG_EXTENSION:
        return "extension"
    if entry.tableoid == PG_NAMESPACE:
        return "schema"
    text = entry.text
    if text.startswith("COMMENT - EXTENSION "):
        return "extension_comment"
    if text.startswith(("ACL ", "DEFAULT ACL ")):
        return "acl"
    if entry.tableoid == PG_CLASS and text.startswith(("TABLE ", "FOREIGN TABLE ")):
        return "table"
    return "object"


@dataclass(frozen=True)
class ObjectEntry:
    dump_id: int
    line: str
    tables: tuple[str, ...]
    kind: str
    address: tuple | None
    identity: str | None
    extension: dict | None = None
    schema: str | None = None
    used_by: tuple[str, ...] = ()  # for shared objects: the tables that use them

    @property
    def toc(self) -> TocEntry:
        from .pgdump import parse_toc

        return parse_toc(self.line)[0]


def load_entries(payload: dict) -> list[ObjectEntry]:
    return [
        ObjectEntry(
            dump_id=e["id"],
            line=e["line"],
            tables=tuple(e["tables"]),
            kind=e["kind"],
            address=tuple(e["address"]) if e.get("address") else None,
            identity=e.get("identity"),
            extension=e.get("extension"),
            schema=e.get("schema"),
            used_by=tuple(e.get("used_by", ())),
        )
        for e in payload["entries"]
    ]


def select_entries(entries: list[ObjectEntry], tables: set[str], *, partial: bool = False) -> list[ObjectEntry]:
    """The entries a restore of `tables` (qualified names) applies with pg_restore.

    Extensions are created by the restore itself (to give a clear error where the target forbids
    them), and ACLs are never restored, so both are left out here. A partial restore leaves out
    shared objects only tables outside it use (a sequence behind another table's default), and
    creates only the schemas something it restores lives in; a full one recreates everything.
    """
    kept = [
        e
        for e in entries
        if e.kind not in ("extension", "extension_comment", "acl") and set(e.tables) <= tables
    ]
    if not partial:
        return kept
    kept = [e for e in kept if not e.used_by or set(e.used_by) & tables]
    used = {e.schema for e in kept if e.kind != "schema"} | {q.split(".", 1)[0] for q in tables}
    used |= {e.extension["schema"] for e in entries if e.kind == "extension" and e.extension}
    return [e for e in kept if e.kind != "schema" or e.schema in used]
