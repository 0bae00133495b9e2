"""Retention: keep the newest N complete snapshots, and never trade a verified one for an unverified one.

Rules, applied newest first over complete snapshots (folders without a manifest are not
snapshots: a backup may be writing one right now, so they are left alone and reported):
1. the newest `keep` snapshots stay;
2. an older snapshot is deleted only when a *newer* snapshot has verified (its verification
   bound to its current manifest) — so the newest verified snapshot is never deleted, and a run
   of unverified backups never pushes the last good one out.

Deleting removes the manifest first: a folder interrupted half-way through deletion is then
no longer a snapshot, never a damaged one.

Every place a snapshot is kept — BACKUP_ROOT and each BACKUP_COPIES destination — is pruned on
its own, by what that place holds and has verified there (a copy records its verification when
it is made), so a copy never loses a snapshot because BACKUP_ROOT verified one it lacks.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from . import copies
from .manifest import list_snapshots
from .settings import SettingMissing
from .storage import MANIFEST, SnapshotStore, StorageError, explain
from .verify import is_verified

DEFAULT_KEEP = 8


@dataclass(frozen=True)
class Decision:
    key: str
    delete: bool
    reason: str
    verified: bool

    def __str__(self) -> str:
        return f"{'delete' if self.delete else 'keep':6} {self.key:14} {'verified  ' if self.verified else 'unverified'}  {self.reason}"


def keep_from_env(environ=os.environ) -> int:
    raw = (environ.get("BACKUP_KEEP") or "").strip()
    if not raw:
        return DEFAULT_KEEP
    if not raw.isdigit() or int(raw) < 1:
        raise SettingMissing(f"BACKUP_KEEP={raw!r}: give the number of snapshots to keep (1 or more)")
    return int(raw)


def incomplete_folders(root: str) -> list[str]:
    """Partition folders without a manifest (a running or interrupted backup)."""
    probe = SnapshotStore(root, "")
    if not probe.fs.exists(probe.root_path):
        return []
    complete = set(list_snapshots(root))
    found = []
    for entry in probe.fs.ls(probe.root_path, detail=False):
        key = entry.rstrip("/").rsplit("/", 1)[-1]
        if not key.startswith(".") and probe.fs.isdir(entry) and key not in complete:
            found.append(key)
    return sorted(found)


def plan(root: str, keep: int = DEFAULT_KEEP) -> list[Decision]:
    """What retention would do, newest snapshot first."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    keys = sorted(list_snapshots(root), reverse=True)
    decisions: list[Decision] = []
    newer_verified: str | None = None
    for index, key in enumerate(keys):
        verified = is_verified(SnapshotStore(root, key))
        if index < keep:
            decisions.append(Decision(key, False, f"among the newest {keep}", verified))
        elif newer_verified is not None:
            decisions.append(Decision(key, True, f"older than the newest {keep}; newer snapshot {newer_verified} is verified", verified))
        else:
            reason = "older than the newest {keep}, but no newer snapshot has verified yet".format(keep=keep)
            if verified:
                reason += " (it is the newest verified snapshot)"
            decisions.append(Decision(key, False, reason, verified))
        if verified and newer_verified is None:
            newer_verified = key
    return decisions


def delete_snapshot(root: str, key: str) -> None:
    store = SnapshotStore(root, key)
    store.remove(MANIFEST)
    store.fs.rm(store.folder, recursive=True)


def apply(root: str, decisions: list[Decision]) -> list[str]:
    deleted = []
    for decision in decisions:
        if decision.delete:
            delete_snapshot(root, decision.key)
            deleted.append(decision.key)
    return deleted


@dataclass(frozen=True)
class Place:
    setting: str  # the setting that names it, for people: BACKUP_ROOT or BACKUP_COPIES
    root: str

    def __str__(self) -> str:
        return f"{self.setting} {self.root}"


def places(root: str, copy_roots: list[str]) -> list[Place]:
    """BACKUP_ROOT, then each distinct copy destination."""
    return [Place("BACKUP_ROOT", root), *(Place(copies.SETTING, r) for r in copies.destinations(root, copy_roots))]


def prune(root: str, keep: int, *, dry_run: bool, log: Callable[[str], None]) -> None:
    """Apply retention to one place (or, on a dry run, only say what it would delete)."""
    decisions = plan(root, keep)
    if not decisions:
        probe = SnapshotStore(root, "")
        # A copy place may be a drive that is not mounted, or a bucket never made: say so, as
        # "nothing to prune" alone would read like a place that holds no old snapshots.
        missing = "" if probe.fs.exists(probe.root_path) else " (it does not exist: a drive not mounted, a bucket not made?)"
        log(f"no complete snapshots in {root}{missing}: nothing to prune")
        return
    for decision in decisions:
        log(("would " if dry_run and decision.delete else "") + str(decision))
    for key in incomplete_folders(root):
        log(f"left alone: {key} has no manifest (a backup running or interrupted)")
    if dry_run:
        log(f"dry run: {sum(d.delete for d in decisions)} of {len(decisions)} snapshots would be deleted")
        return
    deleted = apply(root, decisions)
    log(f"deleted {len(deleted)} of {len(decisions)} snapshots{': ' + ', '.join(deleted) if deleted else ''}")


def prune_everywhere(found: list[Place], keep: int, *, dry_run: bool, log: Callable[[str], None]) -> dict[Place, StorageError]:
    """Prune each place in turn, one that fails not stopping the others; what failed, by place."""
    failures: dict[Place, StorageError] = {}
    for place in found:
        log(f"{place}:")
        try:
            prune(place.root, keep, dry_run=dry_run, log=log)
        except StorageError as error:
            failures[place] = error
        except Exception as error:
            if (explained := explain(error, place.root, place.setting)) is not None:
                failures[place] = explained
            elif isinstance(error, OSError):
                failures[place] = StorageError(f"cannot prune {place}: {error.strerror or error}")
            else:
                raise
    return failures


def failure_lines(failures: dict[Place, StorageError]) -> list[str]:
    return [f"pruning {place} failed: {error}" for place, error in failures.items()]
