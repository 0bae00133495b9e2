"""`demo-db`: (re)create the SkillSwap-shaped demo database named by DATABASE_URL."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict

from ...lib import demo_db
from ..common import add_source_args, admin_url, use_source_url


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("demo-db", help="(re)create the demo SkillSwap database (DROPS it first)")
    add_source_args(parser)
    parser.add_argument("--scale", type=int, default=1, help="multiply every table's row count (benchmarks)")
    parser.set_defaults(handler=run)


def run(args) -> int:
    url = use_source_url(args)
    dbname = conninfo_to_dict(url)["dbname"]
    counts = demo_db.create_demo_database(admin_url(url), dbname, scale=args.scale)
    total = sum(n for t, n in counts.items() if "." not in t)
    print(f"demo database {dbname}: {len(counts)} tables")
    for table, rows in counts.items():
        print(f"  {table:32} {rows:>10}")
    print(f"  {'app tables total':32} {total:>10}")
    return 0
