"""The table catalog: what the source database holds, saved as a file.

The catalog is the single source of truth for everything downstream (assets, checks, restore
order, type mapping). It is produced by reflecting the live database once (`discover`) and then
read from disk, so loading the Dagster definitions never needs the source database to be up.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

CATALOG_FORMAT = 1


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str  # format_type() of the column, e.g. "numeric(12,2)", "public.mood"
    base_type: str  # for domains the underlying type, otherwise pg_type
    type_kind: str  # pg_type.typtype of base: b(ase) e(num) r(ange) m(ultirange) c(omposite)
    is_array: bool
    not_null: bool
    generated: bool = False  # GENERATED ALWAYS AS (...) STORED or VIRTUAL (PostgreSQL 18): recomputed on restore
    identity: str = ""  # "a" (ALWAYS), "d" (BY DEFAULT) or ""
    enum_values: tuple[str, ...] = ()


@dataclass(frozen=True)
class ForeignKey:
    name: str
    columns: tuple[str, ...]
    ref_schema: str
    ref_table: str
    ref_columns: tuple[str, ...]
    validated: bool = True

    @property
    def ref_qualified(self) -> str:
        return f"{self.ref_schema}.{self.ref_table}"


@dataclass(frozen=True)
class CheckConstraint:
    name: str
    definition: str  # pg_get_constraintdef(), e.g. "CHECK (((score >= 1) AND (score <= 5)))"


def _path_safe(part: str) -> str:
    return "".join(
        "".join(f"%{b:02X}" for b in c.encode()) if c in "./\\%" or not c.isprintable() else c for c in part
    )


# Keys (after "skillswap") of the project's own assets: schema, full_dump, manifest, lifecycle.
PROJECT_ASSET_PATHS = frozenset({("schema",), ("full_dump",), ("manifest",), ("lifecycle", "snapshots")})


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    unique_keys: tuple[tuple[str, ...], ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    checks: tuple[CheckConstraint, ...] = ()
    tier: str = "important"
    estimated_rows: int = 0
    # PARTITION BY: its rows live in its partitions, which are not catalog tables of their own.
    # A plain table's inheritance children are, so only a plain table's own rows are its rows.
    partitioned: bool = False

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def asset_path(self) -> list[str]:
        """Asset key path: ["skillswap", table], schema-qualified outside `public`; a table whose
        key would be one of the project's own assets' goes under "tables", schema-qualified."""
        parts = (self.name,) if self.schema == "public" else (self.schema, self.name)
        if parts in PROJECT_ASSET_PATHS:
            parts = ("tables", self.schema, self.name)
        return ["skillswap", *parts]

    @property
    def file_stem(self) -> str:
        """File name stem inside a snapshot folder: `name` in public, else `schema.name`.

        One table, one stem, one path segment: PostgreSQL names may hold anything, and a public
        table "x.y" must not share files with table y of schema x, nor "../t" or "a/b" write
        outside the table's own place. So "." (the separator), "/", "\\", "%" and control
        characters are %-escaped in each part; the names of everyday tables are unchanged.
        """
        parts = (self.name,) if self.schema == "public" else (self.schema, self.name)
        return ".".join(_path_safe(p) for p in parts)

    @property
    def op_name(self) -> str:
        """A Dagster-legal name (letters, digits, underscore) derived from the qualified name;
        a short hash of it is appended when characters had to be replaced, so names stay distinct."""
        name = "_".join(re.sub(r"[^A-Za-z0-9_]", "_", p) for p in self.asset_path[1:])
        if name == "_".join(self.asset_path[1:]):
            return name
        return f"{name}_{hashlib.sha1(self.qualified.encode()).hexdigest()[:8]}"

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def parents(self) -> set[str]:
        """Qualified names of the tables this one references (self-references excluded)."""
        return {fk.ref_qualified for fk in self.foreign_keys} - {self.qualified}


@dataclass(frozen=True)
class Catalog:
    database: str
    server_version: str
    discovered_at: str
    tables: tuple[Table, ...] = field(default_factory=tuple)
    format: int = CATALOG_FORMAT

    def table(self, qualified_or_name: str) -> Table:
        # The qualified name first: "x.y" is table y of schema x even if public has a table "x.y".
        for t in self.tables:
            if qualified_or_name == t.qualified:
                return t
        for t in self.tables:
            if t.schema == "public" and qualified_or_name == t.name:
                return t
        raise KeyError(f"table {qualified_or_name!r} is not in the catalog; run `skillswap-backup discover`")

    def by_qualified(self) -> dict[str, Table]:
        return {t.qualified: t for t in self.tables}

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> Catalog:
        tables = tuple(
            Table(
                schema=t["schema"],
                name=t["name"],
                columns=tuple(
                    Column(**{**c, "enum_values": tuple(c.get("enum_values", ()))}) for c in t["columns"]
                ),
                primary_key=tuple(t["primary_key"]),
                unique_keys=tuple(tuple(u) for u in t["unique_keys"]),
                foreign_keys=tuple(
                    ForeignKey(
                        **{**fk, "columns": tuple(fk["columns"]), "ref_columns": tuple(fk["ref_columns"])}
                    )
                    for fk in t["foreign_keys"]
                ),
                checks=tuple(CheckConstraint(**c) for c in t["checks"]),
                tier=t["tier"],
                estimated_rows=t.get("estimated_rows", 0),
                partitioned=t.get("partitioned", False),
            )
            for t in data["tables"]
        )
        return cls(
            database=data["database"],
            server_version=data["server_version"],
            discovered_at=data["discovered_at"],
            tables=tables,
            format=data.get("format", CATALOG_FORMAT),
        )

    @classmethod
    def from_json(cls, text: str) -> Catalog:
        return cls.from_dict(json.loads(text))


class CatalogMissing(Exception):
    pass


def save_catalog(catalog: Catalog, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(catalog.to_json())
    tmp.replace(path)


def load_catalog(path: Path) -> Catalog:
    if not path.exists():
        raise CatalogMissing(
            f"no table catalog at {path}; run `skillswap-backup discover` (or set BACKUP_CATALOG)"
        )
    return Catalog.from_json(path.read_text())
