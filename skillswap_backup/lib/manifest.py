"""The snapshot manifest: what a complete snapshot holds, written last.

A folder is a snapshot only when `manifest.json` exists and parses; `list`, `restore` and
`verify` ignore anything else, so a run killed half-way never looks like a backup.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version

from . import checksum
from .catalog import Catalog, Table
from .storage import ENCRYPTED_SUFFIX, MANIFEST, SnapshotStore

MANIFEST_FORMAT = 1


def meta_path(table: Table) -> str:
    """What a table's backup wrote (files, rows, checksums), gathered into the manifest."""
    return f"meta/{table.file_stem}.json"


def stale_table_files(store: SnapshotStore, catalog: Catalog) -> list[str]:
    """Table folders and files an earlier run of this partition wrote for tables `catalog` no
    longer holds (dropped or excluded since): no manifest of this run lists them, so nothing
    would ever read them."""
    stems = {t.file_stem for t in catalog.tables}
    folders = {f"tables/{p.split('/')[1]}" for p in store.list_files("tables")}
    files = store.list_files("meta") + store.list_files("json")
    return sorted(
        [f for f in folders if f.split("/")[1] not in stems]
        + [f for f in files if f.split("/", 1)[1].removesuffix(ENCRYPTED_SUFFIX).removesuffix(".json") not in stems]
    )


class IncompleteSnapshot(Exception):
    pass


def tool_version() -> str:
    try:
        return version("skillswap-backup")
    except PackageNotFoundError:
        return "unknown"


def build_manifest(
    *,
    partition_key: str,
    catalog: Catalog,
    table_metas: dict[str, dict],
    extra_files: list[dict],
    source: dict,
    started_at: str,
    encrypted: bool,
    quality: dict | None = None,
) -> dict:
    snapshot_ids = {meta["snapshot_id"] for meta in table_metas.values()}
    if len(snapshot_ids) > 1:
        raise IncompleteSnapshot(
            f"tables of snapshot {partition_key} were read in different snapshots ({len(snapshot_ids)}); "
            "re-run the whole partition so every table comes from one instant"
        )
    missing = [t.qualified for t in catalog.tables if t.qualified not in table_metas]
    if missing:
        raise IncompleteSnapshot(f"snapshot {partition_key} lacks tables: {', '.join(missing)}; re-run the partition")
    # A JSON export holds its table's rows, one object per line: record them as for Parquet parts.
    files = [
        {**f, "rows": meta["rows"]} if f.get("rows") is None and f["path"].startswith("json/") else f
        for meta in table_metas.values()
        for f in meta["files"]
    ] + extra_files
    return {
        "format": MANIFEST_FORMAT,
        "partition_key": partition_key,
        "started_at": started_at,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tool_version": tool_version(),
        "source": source,
        "snapshot_id": snapshot_ids.pop() if snapshot_ids else None,
        "encrypted": encrypted,
        "tables": {
            name: {k: meta[k] for k in ("rows", "source_rows", "checksum", "json_excluded", "json_columns_dropped")}
            | {"checksum_method": checksum.method_of(meta), "files": [f["path"] for f in meta["files"]]}
            for name, meta in sorted(table_metas.items())
        },
        "files": sorted(files, key=lambda f: f["path"]),
        "quality": quality or {},
        "findings": [f for _, meta in sorted(table_metas.items()) for f in meta.get("findings", [])],
        "catalog": json.loads(catalog.to_json()),
    }


def quality_summary(report: dict) -> dict:
    """The manifest's view of `reports/quality.json`: passed/failed, restorable, what failed."""
    return {
        "status": "passed" if report["restorable"] and not report["failed"] else "failed" if not report["restorable"] else "warnings",
        "restorable": report["restorable"],
        "failed": report["failed"],
        "checked_at": report["updated_at"],
        "report": "reports/index.html",
    }


def record_quality(store: SnapshotStore, report: dict) -> bool:
    """Put the data-quality verdict into an existing manifest (checks may finish after it).

    Rewritten atomically, so readers see either the old or the new manifest, never half of one.
    """
    if not store.exists(MANIFEST):
        return False
    body = read_manifest(store)
    body["quality"] = quality_summary(report)
    store.write_json(MANIFEST, body, plaintext=True)
    return True


def read_manifest(store: SnapshotStore) -> dict:
    """The manifest of a snapshot, or IncompleteSnapshot when the folder is not a complete one."""
    if not store.exists(MANIFEST):
        raise IncompleteSnapshot(f"{store.url()} has no manifest.json: not a complete snapshot")
    try:
        return store.read_json(MANIFEST)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise IncompleteSnapshot(f"{store.url(MANIFEST)} is damaged: not a complete snapshot") from None


def list_snapshots(root: str) -> list[str]:
    """Partition keys of complete snapshots under `root`, oldest first."""
    probe = SnapshotStore(root, "")
    if not probe.fs.exists(probe.root_path):
        return []
    keys = []
    for entry in probe.fs.ls(probe.root_path, detail=False):
        key = entry.rstrip("/").rsplit("/", 1)[-1]
        if key.startswith(".") or not probe.fs.isdir(entry):
            continue
        if probe.fs.exists(f"{entry.rstrip('/')}/{MANIFEST}"):
            keys.append(key)
    return sorted(keys)


def stored_file_dict(stored) -> dict:
    return asdict(stored)
