"""`make bench`: our backup against `pg_dump -Fc` of the same database, in the same run.

Builds scaled demo databases (default scale 7300 ≈ 2M rows, and 14600 ≈ 4M rows to show that
memory stays flat), then for each: times `pg_dump -Fc` and `skillswap-backup backup` (Dagster
run through the project's instance, schema + full dump + every table + manifest), and prints
wall seconds, peak RSS per process and the ratio. Databases and files are removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.measure import ADMIN_URL, Measurement, database_url, drop_database, measure, pg_env, settle  # noqa: E402
from skillswap_backup.lib.demo_db import create_demo_database  # noqa: E402

BIN = Path(sys.executable).parent


def bench_backup(source_url: str, work: Path) -> tuple[Measurement, Measurement]:
    dump = measure("pg_dump -Fc", ["pg_dump", "-Fc", "-f", str(work / "full.dump")], pg_env(source_url))
    env = {
        **os.environ,
        "DATABASE_URL": source_url,
        "BACKUP_ROOT": str(work / "backups"),
        "BACKUP_CATALOG": str(work / "catalog.json"),
        "DAGSTER_HOME": str(REPO),
    }
    measure("discover", [str(BIN / "skillswap-backup"), "discover"], env)
    ours = measure("skillswap-backup backup", [str(BIN / "skillswap-backup"), "backup"], env)
    return dump, ours


def report(rows: int, dump: Measurement, ours: Measurement, baseline_word: str) -> None:
    print(f"  {dump.label:28} {dump.seconds:8.2f} s   peak RSS {dump.peak_rss_mb}")
    print(f"  {ours.label:28} {ours.seconds:8.2f} s   peak RSS {ours.peak_rss_mb}")
    print(f"  ratio (ours / {baseline_word}): {ours.seconds / dump.seconds:.2f}x   rows: {rows}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scales", default=os.environ.get("BENCH_SCALES", "7300,14600"))
    args = parser.parse_args()
    os.environ.setdefault("DAGSTER_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/skillswap_dagster")
    for scale in [int(s) for s in args.scales.split(",")]:
        name = f"ssb_bench_{scale}_{os.getpid()}"
        work = Path(tempfile.mkdtemp(prefix="ssb-bench-"))
        try:
            counts = create_demo_database(ADMIN_URL, name, scale=scale)
            settle(name)
            rows = sum(counts.values())
            print(f"scale {scale}: {rows} rows")
            dump, ours = bench_backup(database_url(name), work)
            report(rows, dump, ours, "pg_dump -Fc")
        finally:
            drop_database(name)
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
