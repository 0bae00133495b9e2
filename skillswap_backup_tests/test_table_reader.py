"""The backup's reading connection (lib/table_reader.py): it reads inside the run's snapshot, and
losing it is losing the snapshot — the run fails, nothing is read outside the snapshot."""

from __future__ import annotations

import psycopg
import pytest

from skillswap_backup.defs import retries
from skillswap_backup.defs.resources import SourceDatabase
from skillswap_backup.lib.backup import SnapshotLost
from skillswap_backup.lib.catalog import Column, Table
from skillswap_backup.lib.table_reader import TableReadError

from .pgtools import scratch_database

NOTES = Table(
    schema="public", name="notes",
    columns=(Column(name="id", pg_type="integer", base_type="integer", type_kind="b", is_array=False, not_null=True),),
)


def _ids(reader) -> list[int]:
    return sorted(v for batch in reader.batches(NOTES) for v in batch.column("id").to_pylist())


def test_the_reader_sees_the_snapshot_and_its_loss_fails_the_run():
    with scratch_database("ssb_test_reader") as url:
        with psycopg.connect(url, autocommit=True) as writer:
            writer.execute("CREATE TABLE notes (id int PRIMARY KEY); INSERT INTO notes VALUES (1), (2)")
            source = SourceDatabase(url=url)
            snapshot = source.snapshot()
            try:
                writer.execute("INSERT INTO notes VALUES (3)")  # committed after the snapshot
                assert _ids(snapshot.reader) == [1, 2]

                snapshot.reader._cursor.execute("SELECT pg_backend_pid()")
                (reader_pid,), = snapshot.reader._cursor.fetchall()
                writer.execute("SELECT pg_terminate_backend(%s)", (reader_pid,))
                with pytest.raises(TableReadError) as lost:
                    _ids(snapshot.reader)
                assert not retries.is_permanent(lost.value)  # a dropped connection: the step retries…
                with pytest.raises(SnapshotLost):  # …and the retry finds the snapshot gone
                    source.snapshot()
            finally:
                for conn in (snapshot.conn, snapshot.side_conn):
                    conn.close()
                snapshot.reader.close()
