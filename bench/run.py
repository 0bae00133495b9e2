"""`make bench`: our backup against `pg_dump -Fc` of the same database, in the same run.

Builds scaled demo databases (default scale 7300 ≈ 2M rows, and 14600 ≈ 4M rows to show that
memory stays flat), then for each: times `pg_dump -Fc` and `skillswap-backup backup` (Dagster
run through the project's instance, schema + full dump + every table + checks + manifest), and
prints wall seconds, the machine's CPU seconds, peak RSS per process and the ratio (`--repeat
N`: N alternating rounds, medians). Each round also times the floor under the backup
(`bench/floor.py`: the ADBC read of every table into Parquet, nothing else), so the ratio shows
how much of the backup is its data path and how much the rest (Dagster, JSON, checksums, checks,
the full dump). The demo database at scale 1 (274 rows) is measured first:
what a backup costs whatever the size (imports, the Dagster run, the check process), against
pg_dump's. Databases and files are removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.measure import ADMIN_URL, Measurement, database_url, drop_database, measure, pg_env, settle  # noqa: E402
from skillswap_backup.lib.demo_db import create_demo_database  # noqa: E402

BIN = Path(sys.executable).parent


def bench_backup(source_url: str, work: Path, repeat: int) -> tuple[list[Measurement], list[Measurement], list[Measurement]]:
    """`repeat` rounds of pg_dump -Fc, our backup and its floor, in turn, so all see the same machine."""
    env = {
        **os.environ,
        "DATABASE_URL": source_url,
        "BACKUP_ROOT": str(work / "backups"),
        "BACKUP_CATALOG": str(work / "catalog.json"),
        "DAGSTER_HOME": str(REPO),
    }
    measure("discover", [str(BIN / "skillswap-backup"), "discover"], env)
    dumps, ours, floors = [], [], []
    for _ in range(repeat):
        dumps.append(measure("pg_dump -Fc", ["pg_dump", "-Fc", "-f", str(work / "full.dump")], pg_env(source_url)))
        print(show(dumps[-1]))
        shutil.rmtree(work / "backups", ignore_errors=True)  # each round writes the snapshot afresh
        ours.append(measure("skillswap-backup backup", [str(BIN / "skillswap-backup"), "backup"], env))
        print(show(ours[-1]))
        floors.append(measure("floor: read + Parquet", [sys.executable, str(REPO / "bench" / "floor.py"), str(work / "floor")], env))
        print(show(floors[-1]))
    return dumps, ours, floors


def show(m: Measurement) -> str:
    peaks = ", ".join(f"{name} {mb:.0f} MB" for name, mb in sorted(m.peak_rss_mb.items(), key=lambda kv: -kv[1]))
    return f"  {m.label:28} {m.seconds:8.2f} s  {m.busy_cpu_seconds:6.2f} CPU-s   peak RSS: {peaks}"


def report(rows: int, dumps: list[Measurement], ours: list[Measurement], floors: list[Measurement]) -> None:
    theirs = statistics.median(m.seconds for m in dumps)
    mine = statistics.median(m.seconds for m in ours)
    pairs = ", ".join(f"{b.seconds / a.seconds:.2f}" for a, b in zip(dumps, ours))
    peak = max(m.max_rss_mb for m in ours)
    cpu_theirs = statistics.median(m.busy_cpu_seconds for m in dumps)
    cpu_mine = statistics.median(m.busy_cpu_seconds for m in ours)
    print(f"  median of {len(ours)}: pg_dump -Fc {theirs:.2f} s, skillswap-backup backup {mine:.2f} s, "
          f"ratio {mine / theirs:.2f}x (rounds: {pairs}); our peak RSS {peak:.0f} MB; rows: {rows}")
    print(f"  machine CPU, median: pg_dump -Fc {cpu_theirs:.2f} CPU-s, skillswap-backup backup {cpu_mine:.2f} CPU-s "
          f"({os.cpu_count()} cores)")
    floor = statistics.median(m.seconds for m in floors)
    print(f"  floor (ADBC read + Parquet of every table, nothing else), median: {floor:.2f} s = {floor / theirs:.2f}x "
          f"pg_dump -Fc, {statistics.median(m.busy_cpu_seconds for m in floors):.2f} CPU-s; the rest of our backup "
          f"(Dagster, JSON, checksums, checks, full dump): {mine - floor:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scales", default=os.environ.get("BENCH_SCALES", "7300,14600"))
    parser.add_argument("--repeat", type=int, default=int(os.environ.get("BENCH_REPEAT", "1")))
    args = parser.parse_args()
    os.environ.setdefault("DAGSTER_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/skillswap_dagster")
    for scale in dict.fromkeys([1, *(int(s) for s in args.scales.split(","))]):
        name = f"ssb_bench_{scale}_{os.getpid()}"
        work = Path(tempfile.mkdtemp(prefix="ssb-bench-"))
        try:
            counts = create_demo_database(ADMIN_URL, name, scale=scale)
            settle(name)
            rows = sum(counts.values())
            print(f"scale {scale}: {rows} rows" + (" (what every backup costs, whatever its size)" if scale == 1 else ""))
            report(rows, *bench_backup(database_url(name), work, args.repeat))
        finally:
            drop_database(name)
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
