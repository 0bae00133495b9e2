"""pg_dump and pg_restore as streaming subprocesses: finding the tools, version checks, errors.

Credentials reach the tools only through `pg.libpq_env` (PG* variables and a 0600 passfile), never
on the command line. Dumps stream from pg_dump's stdout into storage in bounded chunks, and
restores stream from storage into pg_restore's stdin, so no dump is ever held in memory. A tool's
failure becomes one line: the tool, what it said first, and what to do.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable

from .pg import tool_env

CHUNK_BYTES = 1 << 20
PG_BINDIR_VAR = "BACKUP_PG_BINDIR"

# Flags that keep a restore portable to managed providers (Neon, Supabase, Railway): objects get
# the restoring role as owner, and nothing needs superuser.
PORTABLE_RESTORE_FLAGS = (
    "--no-owner",
    "--no-acl",
    "--no-security-labels",
    "--no-publications",
    "--no-subscriptions",
    "--no-tablespaces",
)


class DumpError(Exception):
    """One clear line about pg_dump / pg_restore."""


def tool_path(name: str) -> str:
    """`pg_dump` / `pg_restore`: from BACKUP_PG_BINDIR when set, else from PATH."""
    bindir = os.environ.get(PG_BINDIR_VAR)
    if bindir:
        candidate = Path(bindir) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
        raise DumpError(f"{PG_BINDIR_VAR}={bindir} has no executable {name}; point it at a PostgreSQL bin folder")
    found = shutil.which(name)
    if found is None:
        raise DumpError(
            f"{name} is not installed; install the PostgreSQL client tools "
            f"(e.g. apt-get install postgresql-client) or set {PG_BINDIR_VAR}"
        )
    return found


def parse_version(text: str) -> tuple[int, int]:
    """`pg_dump (PostgreSQL) 15.20 (Debian …)` -> (15, 20); also `16beta1` -> (16, 0)."""
    match = re.search(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?", text)
    if match is None:
        raise DumpError(f"cannot read a PostgreSQL version from {text.strip()!r}")
    return int(match.group(1)), int(match.group(2) or 0)


def tool_version(name: str) -> tuple[int, int]:
    output = subprocess.run(
        [tool_path(name), "--version"], capture_output=True, text=True, check=False, env=tool_env()
    ).stdout
    return parse_version(output)


def server_version_text(server_version_num: int) -> str:
    """150020 -> "15.20" (the format of PostgreSQL 10 and later)."""
    return f"{server_version_num // 10000}.{server_version_num % 10000}"


def check_dump_version(tool: tuple[int, int], server_version_num: int) -> None:
    """pg_dump refuses a newer server; say so up front, naming both versions and the fix."""
    server_major = server_version_num // 10000
    if tool[0] < server_major:
        raise DumpError(
            f"pg_dump {tool[0]}.{tool[1]} is older than the source server (PostgreSQL "
            f"{server_version_text(server_version_num)}); install the PostgreSQL {server_major} client tools "
            f"(e.g. apt-get install postgresql-client-{server_major}) or set {PG_BINDIR_VAR} to their bin folder"
        )


def dump_command(*, snapshot_id: str, schema_only: bool, compress: int | None = None) -> list[str]:
    """pg_dump in custom format, reading inside the backup run's exported snapshot."""
    args = [tool_path("pg_dump"), "--format=custom", f"--snapshot={snapshot_id}"]
    if schema_only:
        args.append("--schema-only")
    if compress is not None:
        args.append(f"--compress={compress}")
    return args


def _error_line(tool: str, stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line or "FATAL" in line]
    # pg_restore prints "error: could not execute query: ERROR:  …" then the command; the first
    # error line is the cause, later ones are consequences.
    picked = errors[0] if errors else (lines[-1] if lines else "no message")
    return re.sub(rf"^{tool}:\s*", "", picked)


@dataclass
class ToolResult:
    returncode: int
    stderr: bytes


def _run_streaming(
    args: list[str], env: dict[str, str], *, source: Iterable[bytes] | None = None, sink: BinaryIO | None = None
) -> ToolResult:
    """Run a tool, feeding `source` chunks to its stdin or copying its stdout to `sink`."""
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            args,
            stdin=subprocess.PIPE if source is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE if sink is not None else subprocess.DEVNULL,
            stderr=errors,
            env=env,
        )
        def feed() -> None:
            try:
                for chunk in source:
                    process.stdin.write(chunk)
            except BrokenPipeError:
                pass  # the tool stopped reading (it failed); its exit code and stderr say why
            finally:
                try:
                    process.stdin.close()
                except BrokenPipeError:
                    pass

        try:
            # Feeding and draining at once needs a thread: the tool may fill stdout before it
            # has read all of stdin.
            feeder = threading.Thread(target=feed, daemon=True) if source is not None and sink is not None else None
            if feeder is not None:
                feeder.start()
            elif source is not None:
                feed()
            if sink is not None:
                while chunk := process.stdout.read(CHUNK_BYTES):
                    sink.write(chunk)
            if feeder is not None:
                feeder.join()
            returncode = process.wait()
        except BaseException:
            process.kill()
            process.wait()
            raise
        errors.seek(0)
        return ToolResult(returncode, errors.read())


def run_dump(args: list[str], env: dict[str, str], sink: BinaryIO, *, what: str) -> None:
    """Stream pg_dump's archive into `sink`; fail with one line if pg_dump fails."""
    result = _run_streaming(args, env, sink=sink)
    if result.returncode != 0:
        raise DumpError(f"pg_dump of {what} failed: {_error_line('pg_dump', result.stderr)}")


def run_restore(
    args: list[str], env: dict[str, str], *, what: str, source: Iterable[bytes] | None = None, sink: BinaryIO | None = None
) -> ToolResult:
    """Run pg_restore; any error it reports, even one it would skip past, is a failure."""
    result = _run_streaming([tool_path("pg_restore"), *args], env, source=source, sink=sink)
    text = result.stderr.decode(errors="replace")
    if result.returncode != 0 or "error:" in text:
        raise DumpError(f"pg_restore ({what}) failed: {_error_line('pg_restore', result.stderr)}")
    return result


def iter_chunks(handle: BinaryIO, size: int = CHUNK_BYTES) -> Iterable[bytes]:
    while chunk := handle.read(size):
        yield chunk


# ---- archive table of contents -----------------------------------------------------------------

_TOC_LINE = re.compile(r"^(\d+); (\d+) (\d+) (.*)$")


@dataclass(frozen=True)
class TocEntry:
    """One line of `pg_restore -l`: `<dump id>; <catalog table oid> <object oid> <desc schema tag owner>`."""

    dump_id: int
    tableoid: int
    oid: int
    text: str

    @property
    def line(self) -> str:
        return f"{self.dump_id}; {self.tableoid} {self.oid} {self.text}"


def parse_toc(listing: str) -> list[TocEntry]:
    entries = []
    for line in listing.splitlines():
        match = _TOC_LINE.match(line)
        if match:
            entries.append(TocEntry(int(match.group(1)), int(match.group(2)), int(match.group(3)), match.group(4)))
    return entries


def list_toc(archive: Path, env: dict[str, str] | None = None) -> list[TocEntry]:
    result = subprocess.run(
        [tool_path("pg_restore"), "--list", str(archive)], capture_output=True, env=env or tool_env(), check=False
    )
    if result.returncode != 0:
        raise DumpError(f"pg_restore cannot read {archive.name}: {_error_line('pg_restore', result.stderr)}")
    return parse_toc(result.stdout.decode())


def write_toc_list(entries: Iterable[TocEntry], path: Path) -> Path:
    """A `-L` list file: pg_restore restores exactly these entries, in its own dependency order."""
    path.write_text("".join(entry.line + "\n" for entry in entries))
    return path
