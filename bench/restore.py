"""Restore benchmark: `skillswap-backup restore` against `pg_restore` of a `pg_dump -Fc`, same run.

Builds a scaled demo database (default scale 7300 ≈ 2M rows), backs it up with
`skillswap-backup backup` and with `pg_dump -Fc`, then restores each into a fresh database —
`pg_restore` (one job, as people run it) and the whole `skillswap-backup restore` (Dagster run,
pre-data, parallel COPY, post-data, sequences and verification included) — alternating, `--repeat`
times. Prints wall seconds, the peak RSS of every process seen in each command's tree (python,
pg_restore, …), and the ratio. Every database and file it made is removed at the end.

    .venv/bin/python bench/restore.py --scale 7300 --repeat 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.measure import ADMIN_URL, Measurement, database_url, drop_database, measure, pg_env, settle  # noqa: E402
from skillswap_backup.lib.demo_db import create_demo_database  # noqa: E402

CLI = str(Path(sys.executable).parent / "skillswap-backup")


def create_database(name: str) -> str:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(name)


def table_rows(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        names = conn.execute(
            "SELECT quote_ident(schemaname) || '.' || quote_ident(relname) FROM pg_stat_user_tables ORDER BY 1"
        ).fetchall()
        return {n: conn.execute(f"SELECT count(*) FROM {n}").fetchone()[0] for (n,) in names}


def show(m: Measurement) -> str:
    peaks = ", ".join(f"{name} {mb:.0f} MB" for name, mb in sorted(m.peak_rss_mb.items(), key=lambda kv: -kv[1]))
    return f"  {m.label:34} {m.seconds:8.2f} s   peak RSS: {peaks}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=int(os.environ.get("BENCH_SCALE", "7300")))
    parser.add_argument("--repeat", type=int, default=int(os.environ.get("BENCH_REPEAT", "1")))
    parser.add_argument("--jobs", type=int, default=2, help="skillswap-backup restore --jobs")
    args = parser.parse_args()
    os.environ.setdefault("DAGSTER_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/skillswap_dagster")
    tag = f"{args.scale}_{os.getpid()}"
    source_name = f"ssb_bench_rsrc_{tag}"
    work = Path(tempfile.mkdtemp(prefix="ssb-bench-restore-"))
    made = [source_name]
    try:
        counts = create_demo_database(ADMIN_URL, source_name, scale=args.scale)
        settle(source_name)
        source = database_url(source_name)
        print(f"scale {args.scale}: {sum(counts.values())} rows in {len(counts)} tables")
        env = {**os.environ, "DATABASE_URL": source, "BACKUP_ROOT": str(work / "backups"),
               "BACKUP_CATALOG": str(work / "catalog.json"), "DAGSTER_HOME": str(REPO)}
        env = {k: v for k, v in env.items() if k not in ("BACKUP_AGE_RECIPIENTS", "BACKUP_AGE_IDENTITY", "BACKUP_AGE_PASSPHRASE")}
        measure("discover", [CLI, "discover"], env)
        print(show(measure("pg_dump -Fc", ["pg_dump", "-Fc", "-f", str(work / "full.dump")], pg_env(source))))
        print(show(measure("skillswap-backup backup", [CLI, "backup"], env)))
        expected = table_rows(source)
        theirs, ours = [], []
        for round_ in range(1, args.repeat + 1):
            a, b = f"ssb_bench_rpgr_{tag}_{round_}", f"ssb_bench_rours_{tag}_{round_}"
            made += [a, b]
            target_a, target_b = create_database(a), create_database(b)
            theirs.append(measure("pg_restore (-Fc dump)", ["pg_restore", "--no-owner", "-d", a, str(work / "full.dump")], pg_env(target_a)))
            print(show(theirs[-1]))
            ours.append(measure("skillswap-backup restore", [CLI, "restore", "--jobs", str(args.jobs), "--target-url", target_b], env))
            print(show(ours[-1]))
            for name, target in ((a, target_a), (b, target_b)):
                if table_rows(target) != expected:
                    raise SystemExit(f"{name}: restored row counts differ from the source")
            drop_database(a)
            drop_database(b)
        median_theirs = statistics.median(m.seconds for m in theirs)
        median_ours = statistics.median(m.seconds for m in ours)
        peak = max(max(m.peak_rss_mb.values()) for m in ours)
        print(f"  median: pg_restore {median_theirs:.2f} s, skillswap-backup restore {median_ours:.2f} s, "
              f"ratio {median_ours / median_theirs:.2f}x (target <= 1.2x); our peak RSS {peak:.0f} MB (target < 400 MB)")
    finally:
        for name in made:
            drop_database(name)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
