"""Copies of a complete snapshot in more places: the plan's "store in multiple locations".

A copy is the snapshot's stored bytes, file by file, as they are (an encrypted snapshot stays
encrypted: copying needs no key), laid out like BACKUP_ROOT, so any command works on it with
BACKUP_ROOT pointed at the copy. Each file is checked against the manifest's sha256 while it
is read, so a damaged original is never copied as good. The destination stops being a complete
snapshot (its manifest goes first) until every file, the quality reports and finally the
manifest itself are in place; files a previous copy left that the snapshot no longer has are
removed. Then the copy is read back and verified against the manifest (bytes and sha256): a copy
that does not verify loses its manifest again; one that does has its verification recorded, as
`verify` would record it, so retention at the copy can trust it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from . import verify
from .manifest import read_manifest
from .quality.publish import REPORTS
from .storage import MANIFEST, SnapshotStore, StorageError, explain

SETTING = "BACKUP_COPIES"
CHUNK_BYTES = 1 << 20


class CopyFailed(Exception):
    """A copy could not be made or did not verify: one line naming the snapshot and destination."""


@dataclass
class CopyResult:
    destination: str  # the copy's snapshot folder, for people
    files: int  # the manifest's files (as `verify` counts them) and their bytes
    bytes: int
    reports: int  # files of the quality reports and Data Docs, copied with them
    removed: list[str]  # files of an earlier copy the snapshot no longer has


def _place(root: str) -> str:
    """A root in a comparable form: local paths resolved, URLs without a trailing slash."""
    return root.rstrip("/") if "://" in root else os.path.realpath(root)


def destinations(source_root: str, requested: list[str]) -> list[str]:
    """The distinct destinations of `requested`, refusing the source's own root."""
    found: dict[str, str] = {}
    for root in requested:
        if _place(root) == _place(source_root):
            raise CopyFailed(f"{root} is BACKUP_ROOT itself; a copy must go to another folder or bucket")
        found.setdefault(_place(root), root)
    return list(found.values())


def _copy_file(source: SnapshotStore, destination: SnapshotStore, path: str, expected: dict | None) -> int:
    with source.stored_reader(path) as incoming, destination.stored_writer(path) as (outgoing, _):
        while chunk := incoming.read(CHUNK_BYTES):
            outgoing.write(chunk)
        # The writer counts and hashes what it writes. Raised inside it, so the damaged file
        # never appears at the destination.
        size, digest = outgoing.size, outgoing.sha256.hexdigest()
        if expected is not None and (size, digest) != (expected["bytes"], expected["sha256"]):
            raise CopyFailed(
                f"{source.url(path)} does not match its manifest ({size} bytes, sha256 {digest[:12]}…; "
                f"the manifest says {expected['bytes']} bytes, {expected['sha256'][:12]}…): not copied; "
                f"run `skillswap-backup verify {source.partition_key}`"
            )
    return size


def copy_snapshot(source: SnapshotStore, destination_root: str, *, log: Callable[[str], None] = lambda line: None) -> CopyResult:
    """Copy the complete snapshot `source` to `destination_root`/<its key>/, verified."""
    body = read_manifest(source)  # outside the try: a source that fails is BACKUP_ROOT's problem
    destination = SnapshotStore(destination_root, source.partition_key, encryption_config=source.encryption, setting=SETTING)
    try:
        return _copy(source, body, destination, log)
    except (CopyFailed, StorageError):
        raise
    except Exception as error:
        if (explained := explain(error, destination_root, SETTING)) is not None:
            raise explained from None
        if isinstance(error, OSError):
            raise StorageError(f"copying snapshot {source.partition_key} to {destination.url()} failed: {error}") from None
        raise


def _copy(source: SnapshotStore, body: dict, destination: SnapshotStore, log: Callable[[str], None]) -> CopyResult:
    destination.ensure_writable()
    # From here until the new manifest, the destination is not a complete snapshot.
    destination.remove(MANIFEST)
    destination.remove(verify.VERIFIED)
    copied = sum(_copy_file(source, destination, entry["path"], entry) for entry in body["files"])
    reports = source.list_files(REPORTS)
    for path in reports:  # written after the manifest, so not listed in it: copied as they are
        _copy_file(source, destination, path, None)
    wanted = {entry["path"] for entry in body["files"]} | set(reports)
    removed = [path for path in destination.list_files() if path not in wanted]
    for path in removed:
        destination.remove(path)
    if removed:
        log(f"removed {len(removed)} files an earlier copy left in {destination.url()}: {', '.join(removed)}")
    _copy_file(source, destination, MANIFEST, None)
    # Read back: what the destination holds, against the manifest it now has.
    report = verify.verify_snapshot(destination, check_rows=False)
    if not report.ok:
        destination.remove(MANIFEST)  # never listed as a complete snapshot
        raise CopyFailed(f"the copy at {destination.url()} did not verify: {report.summary()}")
    verify.record(destination, report)
    return CopyResult(destination=destination.url(), files=len(body["files"]), bytes=copied, reports=len(reports), removed=removed)


def copy_everywhere(source: SnapshotStore, roots: list[str], *, log: Callable[[str], None]) -> dict[str, Exception]:
    """Copy `source` to each root in turn, one failing destination not stopping the others;
    logs each copy made and returns what failed, by destination."""
    failures: dict[str, Exception] = {}
    for root in destinations(source.root, roots):
        try:
            result = copy_snapshot(source, root, log=log)
        except (CopyFailed, StorageError) as error:
            failures[root] = error
            continue
        log(
            f"copied snapshot {source.partition_key} to {result.destination}: {result.files} files, {result.bytes} bytes "
            f"(and {result.reports} report files), verified"
        )
    return failures


def failure_lines(failures: dict[str, Exception]) -> list[str]:
    return [f"copy to {root} failed: {error}" for root, error in failures.items()]
