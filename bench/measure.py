"""Shared by the benchmarks: run a command and measure its wall time, the peak RSS of every
process in its tree, and the CPU time the whole machine spent meanwhile.

Samples /proc every 20 ms (no extra dependency), so a short-lived child may be missed; the
figures are peaks seen, per command name (python, pg_dump, pg_restore, ...). The CPU time comes
from /proc/stat (every core, every process): it counts the PostgreSQL server's work for the
command, which is much of pg_dump's, and whatever else the machine does meanwhile (little here).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@dataclass
class Measurement:
    label: str
    seconds: float
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    returncode: int = 0
    busy_cpu_seconds: float = 0.0  # every core of the machine, while the command ran

    @property
    def max_rss_mb(self) -> float:
        return max(self.peak_rss_mb.values(), default=0.0)


def _machine_busy_seconds() -> float:
    """CPU seconds every core has spent busy since boot (not idle, not waiting for I/O)."""
    with open("/proc/stat") as handle:
        ticks = [int(v) for v in handle.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found += [int(p) for p in handle.read().split()]
    except OSError:
        pass
    return found


def _rss_and_name(pid: int) -> tuple[str, float] | None:
    try:
        with open(f"/proc/{pid}/status") as handle:
            fields = dict(line.split(":", 1) for line in handle if ":" in line)
        return fields["Name"].strip(), int(fields.get("VmRSS", "0 kB").split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        return None


def measure(label: str, command: list[str], env: dict[str, str] | None = None) -> Measurement:
    """Wall time and peak RSS per process name over the command's whole process tree.

    Output goes to a file, never a pipe nobody reads (a chatty Dagster run would block on it)."""
    with tempfile.TemporaryFile() as output:
        busy = _machine_busy_seconds()
        started = time.monotonic()
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        peaks: dict[str, float] = {}
        while process.poll() is None:
            tree, frontier = [], [process.pid]
            while frontier:
                pid = frontier.pop()
                tree.append(pid)
                frontier += _children(pid)
            for pid in tree:
                seen = _rss_and_name(pid)
                if seen:
                    name, rss = seen
                    peaks[name] = max(peaks.get(name, 0.0), rss)
            time.sleep(0.02)
        seconds = time.monotonic() - started
        busy = _machine_busy_seconds() - busy
        if process.returncode != 0:
            output.seek(0)
            tail = output.read().decode(errors="replace").strip().splitlines()[-3:]
            raise SystemExit(f"{label} failed (exit {process.returncode}): {' | '.join(tail)}")
    return Measurement(label, round(seconds, 2), {k: round(v, 1) for k, v in peaks.items()}, 0, round(busy, 2))


def database_url(name: str) -> str:
    return psycopg.conninfo.make_conninfo(ADMIN_URL, dbname=name)


def settle(name: str) -> None:
    """VACUUM (FREEZE, ANALYZE) a freshly loaded database, as a production one is in steady state.

    Otherwise autovacuum visits its new tables a minute after the load, in the middle of whichever
    command is being timed then (the first restore of a run took ~1.2 s longer than the others)."""
    with psycopg.connect(database_url(name), autocommit=True) as conn:
        conn.execute("VACUUM (FREEZE, ANALYZE)")


def drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def pg_env(url: str) -> dict[str, str]:
    """PG* variables for pg_dump / pg_restore, so no URL goes on their command line."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    return {**os.environ, "PGHOST": info.get("host") or "127.0.0.1", "PGPORT": str(info.get("port") or 5432),
            "PGUSER": info.get("user") or "postgres", "PGDATABASE": info["dbname"]}
