"""Run a command and measure its wall time and the peak RSS of every process in its tree.

Samples /proc every 20 ms (no extra dependency), so a short-lived child may be missed; the
figures are peaks seen, per command name (python, pg_dump, pg_restore, ...).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field


@dataclass
class Measurement:
    label: str
    seconds: float
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    returncode: int = 0

    @property
    def max_rss_mb(self) -> float:
        return max(self.peak_rss_mb.values(), default=0.0)


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
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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
    stderr = process.stderr.read().decode(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"{label} failed (exit {process.returncode}): {stderr.strip().splitlines()[-1:]}")
    return Measurement(label, round(seconds, 2), {k: round(v, 1) for k, v in peaks.items()}, process.returncode)
