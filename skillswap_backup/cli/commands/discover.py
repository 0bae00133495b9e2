"""`discover`: reflect the source database into the catalog file."""

from __future__ import annotations

from ...lib import settings
from ..common import add_source_args, discover_catalog, use_source_url


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("discover", help="reflect the source database into the table catalog")
    add_source_args(parser)
    parser.add_argument("--include", help="comma-separated table patterns to keep (schema.table or table, globs)")
    parser.add_argument("--exclude", help="comma-separated table patterns to leave out")
    parser.set_defaults(handler=run)


def run(args) -> int:
    url = use_source_url(args)
    include = settings.split_list(args.include) if args.include else None
    exclude = settings.split_list(args.exclude) if args.exclude else None
    catalog = discover_catalog(url, include, exclude)
    print(f"catalog of {catalog.database} (PostgreSQL {catalog.server_version}) saved to {settings.catalog_path()}")
    for table in catalog.tables:
        parents = ", ".join(sorted(table.parents())) or "-"
        print(f"  {table.qualified:40} {table.tier:10} {len(table.columns):3} columns  parents: {parents}")
    print(f"{len(catalog.tables)} tables")
    return 0
