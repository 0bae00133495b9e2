"""Is the newest snapshot recent enough, and how close is the source database to expiring?

Pure logic over the snapshot folders and a clock passed in, so the `status` command, the
freshness check, and the expiry sensor agree, and tests can fix the time.

- Fresh: the newest complete snapshot finished no longer ago than one cadence window plus a
  grace period (BACKUP_FRESHNESS_GRACE_HOURS, default 6) for a slow or late run.
- Expiry: SOURCE_EXPIRES_ON (YYYY-MM-DD, the day the source stops being available) and
  EXPIRY_WARN_DAYS (default 7). Within the warning window, a *final* snapshot is one taken inside
  the window; it is *verified* when its verification passed, restore test included.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from .manifest import list_snapshots, read_manifest
from .settings import SettingMissing
from .storage import SnapshotStore
from .verify import read_verification

DEFAULT_GRACE_HOURS = 6
DEFAULT_WARN_DAYS = 7


@dataclass(frozen=True)
class ExpirySettings:
    expires_on: date | None
    warn_days: int = DEFAULT_WARN_DAYS

    @classmethod
    def from_env(cls, environ=os.environ) -> ExpirySettings:
        raw = (environ.get("SOURCE_EXPIRES_ON") or "").strip()
        try:
            expires_on = date.fromisoformat(raw) if raw else None
        except ValueError:
            raise SettingMissing(f"SOURCE_EXPIRES_ON={raw!r} is not a date; write it as YYYY-MM-DD") from None
        warn_raw = (environ.get("EXPIRY_WARN_DAYS") or "").strip()
        if warn_raw and not warn_raw.isdigit():
            raise SettingMissing(f"EXPIRY_WARN_DAYS={warn_raw!r} is not a whole number of days")
        return cls(expires_on, int(warn_raw) if warn_raw else DEFAULT_WARN_DAYS)


def grace_from_env(environ=os.environ) -> timedelta:
    raw = (environ.get("BACKUP_FRESHNESS_GRACE_HOURS") or "").strip()
    try:
        return timedelta(hours=float(raw)) if raw else timedelta(hours=DEFAULT_GRACE_HOURS)
    except ValueError:
        raise SettingMissing(f"BACKUP_FRESHNESS_GRACE_HOURS={raw!r} is not a number of hours") from None


@dataclass(frozen=True)
class SnapshotInfo:
    key: str
    finished_at: datetime
    verified: bool
    restore_tested: bool
    verify_failed: bool = False  # the last verification of this very manifest found problems


@dataclass
class LifecycleStatus:
    now: datetime
    snapshots: list[SnapshotInfo]
    allowed_age: timedelta
    expiry: ExpirySettings
    lines: list[str] = field(default_factory=list)

    @property
    def newest(self) -> SnapshotInfo | None:
        return max(self.snapshots, key=lambda s: s.finished_at, default=None)

    @property
    def newest_verified(self) -> SnapshotInfo | None:
        return max((s for s in self.snapshots if s.verified), key=lambda s: s.finished_at, default=None)

    @property
    def age(self) -> timedelta | None:
        return None if self.newest is None else self.now - self.newest.finished_at

    @property
    def fresh(self) -> bool:
        return self.age is not None and self.age <= self.allowed_age

    @property
    def days_left(self) -> int | None:
        if self.expiry.expires_on is None:
            return None
        return (self.expiry.expires_on - self.now.date()).days

    @property
    def window_start(self) -> datetime | None:
        if self.expiry.expires_on is None:
            return None
        day = self.expiry.expires_on - timedelta(days=self.expiry.warn_days)
        return datetime(day.year, day.month, day.day, tzinfo=self.now.tzinfo or timezone.utc)

    @property
    def in_expiry_window(self) -> bool:
        return self.days_left is not None and self.days_left <= self.expiry.warn_days

    @property
    def final_snapshot(self) -> SnapshotInfo | None:
        """The newest snapshot taken inside the expiry warning window (None outside the window)."""
        if not self.in_expiry_window:
            return None
        taken = [s for s in self.snapshots if s.finished_at >= self.window_start]
        return max(taken, key=lambda s: s.finished_at, default=None)

    @property
    def verified_final(self) -> SnapshotInfo | None:
        taken = [s for s in self.snapshots if self.in_expiry_window and s.finished_at >= self.window_start]
        good = [s for s in taken if s.verified and s.restore_tested]
        return max(good, key=lambda s: s.finished_at, default=None)

    @property
    def needs_attention(self) -> bool:
        return not self.fresh or (self.in_expiry_window and self.verified_final is None)

    def freshness_line(self) -> str:
        if self.newest is None:
            return "no complete snapshot yet: run `skillswap-backup backup`"
        age = _human(self.age)
        if self.fresh:
            return f"fresh: newest snapshot {self.newest.key} finished {age} ago (allowed {_human(self.allowed_age)})"
        return (
            f"STALE: newest snapshot {self.newest.key} finished {age} ago, more than the {_human(self.allowed_age)} "
            "the backup cadence allows; check the backup schedule and the last backup run"
        )

    def expiry_line(self) -> str:
        if self.expiry.expires_on is None:
            return "source expiry: not set (SOURCE_EXPIRES_ON=YYYY-MM-DD to be warned before it)"
        days, when = self.days_left, self.expiry.expires_on.isoformat()
        if days < 0:
            head = f"SOURCE DATABASE EXPIRED {-days} DAYS AGO ({when})"
        elif self.in_expiry_window:
            head = f"SOURCE DATABASE EXPIRES IN {days} DAYS ({when})"
        else:
            return f"source expires in {days} days ({when}); the final backup starts {self.expiry.warn_days} days before"
        final = self.verified_final
        if final is not None:
            return f"{head}: verified final snapshot {final.key} (files and restore test passed)"
        taken = self.final_snapshot
        if taken is not None:
            return f"{head}: final snapshot {taken.key} NOT VERIFIED yet; run `skillswap-backup verify {taken.key} --restore-test`"
        return f"{head}: NO FINAL SNAPSHOT yet; run `skillswap-backup backup` then `skillswap-backup verify --restore-test`"


def _human(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def _parse_time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def snapshot_infos(root: str, encryption_config=None) -> list[SnapshotInfo]:
    infos = []
    for key in list_snapshots(root):
        store = SnapshotStore(root, key, encryption_config=encryption_config)
        body = read_manifest(store)
        record = read_verification(store)
        verified = bool(record and record.get("ok"))
        infos.append(
            SnapshotInfo(
                key=key,
                finished_at=_parse_time(body["finished_at"]),
                verified=verified,
                restore_tested=verified and bool((record.get("restore_test") or {}).get("ok")),
                verify_failed=bool(record) and not verified,
            )
        )
    return infos


def lifecycle_status(
    root: str, *, now: datetime, cadence: timedelta, grace: timedelta | None = None,
    expiry: ExpirySettings | None = None,
) -> LifecycleStatus:
    now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
    return LifecycleStatus(
        now=now,
        snapshots=snapshot_infos(root),
        allowed_age=cadence + (grace if grace is not None else grace_from_env()),
        expiry=expiry if expiry is not None else ExpirySettings.from_env(),
    )
