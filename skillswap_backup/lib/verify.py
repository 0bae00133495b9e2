"""Verify a snapshot against its manifest, and record the result in the snapshot.

Verification re-reads every stored file: bytes and sha256 of what is on storage (so it works on
encrypted snapshots without the key), then rows: each Parquet part's row count and each JSON
file's row lines against the manifest, and each table's parts against the table's total. Files
on storage that the manifest does not list are reported too: a snapshot is exactly its manifest.

The outcome is written to `verified.json` next to the manifest, bound to the manifest's sha256:
re-running the partition writes a new manifest, so an old verification can never vouch for new
data. Retention trusts only such a binding verification.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from .manifest import IncompleteSnapshot, list_snapshots, read_manifest, tool_version
from .storage import ENCRYPTED_SUFFIX, MANIFEST, SnapshotStore

VERIFIED = "verified.json"
# Files a snapshot may hold beyond what its manifest lists: the manifest and what is written after
# it about the snapshot (this verification; the quality reports and Data Docs under reports/).
AFTER_MANIFEST = (MANIFEST, VERIFIED)
AFTER_MANIFEST_FOLDERS = ("reports/",)


class VerifyFailed(Exception):
    """A snapshot did not verify; the message names the snapshot and its bad files."""


@dataclass
class Problem:
    path: str
    kind: str  # missing | extra | corrupt | truncated | rows | unreadable
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.path}: {self.detail}"


@dataclass
class VerifyReport:
    partition_key: str
    manifest_sha256: str
    files: int = 0
    bytes: int = 0
    rows_checked: int = 0  # rows of the tables whose every Parquet part was counted and matched
    tables_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    restore_test: dict | None = None
    verified_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def ok(self) -> bool:
        restore_ok = self.restore_test is None or bool(self.restore_test.get("ok"))
        return not self.problems and restore_ok

    def summary(self) -> str:
        if self.ok:
            restored = ""
            if self.restore_test:
                restored = f"; restore test passed ({self.restore_test.get('tables', '?')} tables, {self.restore_test.get('rows', '?')} rows)"
            rows = f"; rows of {self.tables_checked} tables ({self.rows_checked} rows) match" if self.tables_checked else ""
            return f"snapshot {self.partition_key} verified: {self.files} files, {self.bytes} bytes{rows}{restored}"
        parts = [str(p) for p in self.problems]
        if self.restore_test is not None and not self.restore_test.get("ok"):
            parts.append(f"restore test failed: {self.restore_test.get('error', 'see the log')}")
        return f"snapshot {self.partition_key} FAILED verification ({len(parts)} problems): " + "; ".join(parts)

    def to_dict(self) -> dict:
        return {
            "partition_key": self.partition_key,
            "ok": self.ok,
            "verified_at": self.verified_at,
            "tool_version": tool_version(),
            "manifest_sha256": self.manifest_sha256,
            "files": self.files,
            "bytes": self.bytes,
            "rows_checked": self.rows_checked,
            "tables_checked": self.tables_checked,
            "problems": [asdict(p) for p in self.problems],
            "notes": self.notes,
            "restore_test": self.restore_test,
        }


def manifest_sha256(store: SnapshotStore) -> str:
    return store.describe(MANIFEST).sha256


def _json_rows(store: SnapshotStore, path: str) -> int:
    """Rows of a JSON export: one object per line between the `[` and `]` lines."""
    newlines = 0
    with store.reader(path) as handle:
        while chunk := handle.read(1 << 20):
            newlines += chunk.count(b"\n")
    return max(newlines - 2, 0)


def _parquet_rows(store: SnapshotStore, path: str) -> int:
    return store.parquet_file(path).metadata.num_rows


def _expected_rows(body: dict) -> dict[str, int]:
    """Rows each file should hold: as recorded, or the table's rows for its JSON export."""
    expected = {f["path"]: f["rows"] for f in body["files"] if f.get("rows") is not None}
    for table in body["tables"].values():
        for path in table["files"]:
            if path.startswith("json/") and path not in expected and not table.get("json_excluded"):
                expected[path] = table["rows"]
    return expected


def verify_snapshot(store: SnapshotStore, *, check_rows: bool = True) -> VerifyReport:
    """Check every file of the snapshot against its manifest; never raises for bad files."""
    body = read_manifest(store)
    report = VerifyReport(partition_key=store.partition_key, manifest_sha256=manifest_sha256(store))
    listed = {f["path"]: f for f in body["files"]}
    on_storage = set(store.list_files())
    can_decrypt = store.encryption is not None and getattr(store.encryption, "can_decrypt", False)
    expected_rows = _expected_rows(body)
    actual_rows: dict[str, int] = {}

    unlisted = on_storage - set(listed) - set(AFTER_MANIFEST)
    for path in sorted(p for p in unlisted if not p.startswith(AFTER_MANIFEST_FOLDERS)):
        report.problems.append(Problem(path, "extra", "on storage but not in the manifest"))
    for path, entry in sorted(listed.items()):
        if path not in on_storage:
            report.problems.append(Problem(path, "missing", f"listed in the manifest ({entry['bytes']} bytes) but not on storage"))
            continue
        found = store.describe(path)
        report.files += 1
        report.bytes += found.bytes
        if found.bytes != entry["bytes"]:
            kind = "truncated" if found.bytes < entry["bytes"] else "corrupt"
            report.problems.append(Problem(path, kind, f"{found.bytes} bytes, the manifest says {entry['bytes']}"))
            continue
        if found.sha256 != entry["sha256"]:
            report.problems.append(Problem(path, "corrupt", f"sha256 {found.sha256[:12]}… differs from the manifest's {entry['sha256'][:12]}…"))
            continue
        if not check_rows or path not in expected_rows:
            continue
        if path.endswith(ENCRYPTED_SUFFIX) and not can_decrypt:
            continue
        try:
            rows = _parquet_rows(store, path) if ".parquet" in path else _json_rows(store, path)
        except Exception as error:  # a file that hashes right but does not parse: say which, go on
            report.problems.append(Problem(path, "unreadable", f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"))
            continue
        actual_rows[path] = rows
        if rows != expected_rows[path]:
            report.problems.append(Problem(path, "rows", f"{rows} rows, the manifest says {expected_rows[path]}"))

    encrypted_unread = [p for p in expected_rows if p.endswith(ENCRYPTED_SUFFIX) and p not in actual_rows]
    if check_rows and encrypted_unread and not can_decrypt:
        report.notes.append(
            f"rows of {len(encrypted_unread)} encrypted files not checked (set BACKUP_AGE_IDENTITY to check them); "
            "bytes and sha256 were checked"
        )
    for name, table in body["tables"].items():
        parts = [p for p in table["files"] if ".parquet" in p]
        if parts and all(p in actual_rows for p in parts):
            total = sum(actual_rows[p] for p in parts)
            if total != table["rows"]:
                report.problems.append(Problem(name, "rows", f"Parquet parts hold {total} rows, the table has {table['rows']}"))
            else:
                report.tables_checked += 1
                report.rows_checked += total
        for path in table["files"]:
            if path not in listed:
                report.problems.append(Problem(path, "missing", f"file of table {name} has no entry in the manifest's file list"))
    return report


def record(store: SnapshotStore, report: VerifyReport) -> None:
    """Write the outcome to the snapshot (plaintext: it holds no data, and status reads it keyless)."""
    store.write_json(VERIFIED, report.to_dict(), plaintext=True)


def read_verification(store: SnapshotStore) -> dict | None:
    """The snapshot's last verification, or None when absent, unreadable or made for another manifest."""
    if not store.exists(VERIFIED) or not store.exists(MANIFEST):
        return None
    try:
        record_ = store.read_json(VERIFIED)
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return None
    if record_.get("manifest_sha256") != manifest_sha256(store):
        return None
    return record_


def is_verified(store: SnapshotStore, *, restore_tested: bool = False) -> bool:
    found = read_verification(store)
    if not found or not found.get("ok"):
        return False
    return not restore_tested or bool((found.get("restore_test") or {}).get("ok"))


def resolve_snapshot(root: str, requested: str | None) -> str:
    """The requested snapshot key, or the newest complete one; IncompleteSnapshot when none fits."""
    keys = list_snapshots(root)
    if requested is None:
        if not keys:
            raise IncompleteSnapshot(f"no complete snapshot in {root}; run `skillswap-backup backup` first")
        return keys[-1]
    if requested not in keys:
        shown = ", ".join(keys[-5:]) or "none"
        raise IncompleteSnapshot(f"{requested!r} is not a complete snapshot in {root} (complete: {shown})")
    return requested
