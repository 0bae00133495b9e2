"""Dagster resources: the source database (holding the run's snapshot) and snapshot storage."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator

import dagster as dg
import psycopg
from pydantic import Field, PrivateAttr

from ..lib import backup, pg, pgtypes
from ..lib.storage import SnapshotStore
from ..lib.table_reader import SnapshotReader


@dataclass
class Snapshot:
    """The open REPEATABLE READ transaction every asset of one backup run reads through."""

    conn: psycopg.Connection  # exported the snapshot and holds it; drift checks
    reader: SnapshotReader  # same snapshot: reads the tables' rows
    side_conn: psycopg.Connection  # same snapshot: checksums run here while `reader` streams rows
    snapshot_id: str
    server_version: str
    database: str
    started_at: str


class SourceDatabase(dg.ConfigurableResource):
    """The PostgreSQL database being backed up; one consistent snapshot per run."""

    url: str = Field(description="Connection URL of the source (set through the DATABASE_URL env var).")

    _snapshot: Snapshot | None = PrivateAttr(default=None)
    _connections: list = PrivateAttr(default_factory=list)
    _pool: ThreadPoolExecutor | None = PrivateAttr(default=None)
    _background: dict = PrivateAttr(default_factory=dict)

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[SourceDatabase]:
        try:
            yield self
        finally:
            if self._pool is not None:
                # A background pg_dump still reads the snapshot: let it end before closing it.
                self._pool.shutdown(wait=True, cancel_futures=True)
            for conn in self._connections:
                conn.close()
            if self._snapshot is not None:
                self._snapshot.reader.close()

    def in_background(self, name: str, start: Callable[[], Future] | None = None) -> Future | None:
        """The run's background job `name`; `start(pool)` launches it the first time it is asked for.

        Used for the pg_dumps: they run beside the table reads (other processes, another core)
        in the same snapshot, and their assets only wait for them.
        """
        if name not in self._background and start is not None:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="snapshot-background")
            self._background[name] = start(self._pool)
        return self._background.get(name)

    def snapshot(self) -> Snapshot:
        """Open (once per run) the transaction whose exported snapshot all assets share.

        The executor runs every step of a run in this process (in_process executor), so the
        connection that exported the snapshot stays open, like pg_dump's, until the run ends.
        """
        if self._snapshot is None:
            conn, side_conn = (pg.open_connection(self.url, purpose="source database") for _ in range(2))
            self._connections += [conn, side_conn]
            for each in (conn, side_conn):
                pgtypes.apply_session_settings(each)
                each.commit()
            snapshot_id = backup.begin_snapshot(conn)
            backup.begin_snapshot(side_conn, snapshot_id)
            self._snapshot = Snapshot(
                conn=conn,
                reader=SnapshotReader(self.url, snapshot_id),
                side_conn=side_conn,
                snapshot_id=snapshot_id,
                server_version=conn.execute("SHOW server_version").fetchone()[0],
                database=conn.info.dbname,
                started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            )
        lost = any(c.closed or c.broken for c in (self._snapshot.conn, self._snapshot.side_conn))
        if lost or self._snapshot.reader.broken:
            raise backup.SnapshotLost(
                f"the connection holding snapshot {self._snapshot.snapshot_id} was lost; re-run the whole partition"
            )
        return self._snapshot


class BackupStorage(dg.ConfigurableResource):
    """Where snapshot folders live: a local folder or any fsspec URL (s3://bucket/prefix)."""

    root: str = Field(description="BACKUP_ROOT: folder or fsspec URL holding one folder per snapshot.")
    anonymize: bool = Field(default=False, description="Apply the PII rules to the JSON exports.")

    def store(self, partition_key: str) -> SnapshotStore:
        return SnapshotStore(self.root, partition_key)
