"""`skillswap-backup changes` benchmark: two weekly snapshots of a scaled demo database, one week's
edits apart, compared with the changed rows exported.

For each scale: builds the database, backs it up as the previous week, edits it (1% of users and
skills updated, 1% more skills, a tenth of the swap ratings deleted), backs it up as this week,
then times `skillswap-backup changes -o DIR` and prints wall seconds, peak RSS and the counts.
It also prints the time of only reading both snapshots' Parquet, the floor of any comparison.
Memory should not grow with the scale. Every database and file it made is removed at the end.

    .venv/bin/python bench/changes.py --scales 7300,14600
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.measure import ADMIN_URL, database_url, drop_database, measure, settle  # noqa: E402
from skillswap_backup.lib.demo_db import create_demo_database  # noqa: E402

CLI = str(Path(sys.executable).parent / "skillswap-backup")

EDITS = """
UPDATE users SET bio = bio || ' (edited)' WHERE id % 100 = 0;
UPDATE skills SET description = coalesce(description, '') || ' (edited)' WHERE id % 100 = 0;
INSERT INTO skills (name, category, description)
    SELECT name || ' (new)', category, description FROM skills WHERE id % 100 = 1;
DELETE FROM swap_ratings WHERE id % 10 = 0;
"""


def week_keys() -> tuple[str, str]:
    """The previous and the current weekly partition keys."""
    from skillswap_backup.defs.partitions import current_partition_key, snapshot_partitions

    partitions = snapshot_partitions()
    keys = partitions.get_partition_keys()
    current = current_partition_key(partitions)
    return keys[keys.index(current) - 1], current


def read_seconds(root: Path, keys: tuple[str, ...]) -> float:
    """Wall seconds to read every Parquet part of the snapshots `keys`: the floor of a comparison."""
    import pyarrow.parquet as pq

    started = time.monotonic()
    for key in keys:
        for part in sorted((root / key / "tables").rglob("*.parquet")):
            for _ in pq.ParquetFile(part).iter_batches(batch_size=65_536):
                pass
    return time.monotonic() - started


def run_scale(scale: int, previous: str, current: str) -> None:
    name = f"ssb_bench_changes_{scale}_{os.getpid()}"
    work = Path(tempfile.mkdtemp(prefix="ssb-bench-changes-"))
    try:
        counts = create_demo_database(ADMIN_URL, name, scale=scale)
        settle(name)
        source = database_url(name)
        env = {**os.environ, "DATABASE_URL": source, "BACKUP_ROOT": str(work / "backups"),
               "BACKUP_CATALOG": str(work / "catalog.json"), "DAGSTER_HOME": str(REPO)}
        env = {k: v for k, v in env.items() if not k.startswith("BACKUP_AGE_")}
        print(f"scale {scale}: {sum(counts.values())} rows in {len(counts)} tables")
        for command in (["discover"], ["backup", "--partition", previous]):
            subprocess.run([CLI, *command], env=env, check=True, capture_output=True)
        with psycopg.connect(source, autocommit=True) as conn:
            conn.execute(EDITS)
        subprocess.run([CLI, "backup", "--partition", current], env=env, check=True, capture_output=True)
        compared = measure("skillswap-backup changes -o", [CLI, "changes", "-o", str(work / "changes")], env)
        report = subprocess.run([CLI, "changes"], env=env, check=True, capture_output=True, text=True).stdout
        peaks = ", ".join(f"{n} {mb:.0f} MB" for n, mb in sorted(compared.peak_rss_mb.items(), key=lambda kv: -kv[1]))
        print(f"  changes -o: {compared.seconds:.2f} s, peak RSS: {peaks}")
        print(f"  reading both snapshots' Parquet, nothing else: {read_seconds(work / 'backups', (previous, current)):.2f} s")
        print("  " + "\n  ".join(report.splitlines()[1:]))
    finally:
        drop_database(name)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default=os.environ.get("BENCH_SCALES", "7300,14600"))
    args = parser.parse_args()
    os.environ.setdefault("DAGSTER_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/skillswap_dagster")
    previous, current = week_keys()
    for scale in (int(s) for s in args.scales.split(",")):
        run_scale(scale, previous, current)


if __name__ == "__main__":
    main()
