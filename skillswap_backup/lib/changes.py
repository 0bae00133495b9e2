"""What changed from one snapshot to a later one, table by table: the plan's incremental export.

Rows are matched by primary key; in a table without one (or whose key differs between the two
snapshots) by the whole row, so an edit there reads as one row removed and one added. A matched
row has changed when any column both snapshots hold differs. Values are compared in the JSON
export's exact text form, so every column type is compared the same way, and a new password hash
counts as a change although the JSON tier never shows it.

Memory stays flat however large the tables: each row becomes a 64-bit code of its key (an
integer key is its own code) and one of its values, spilled to hash partitions on disk by key
code, as the data-quality checks spill keys, and each partition is compared alone. Two versions
of a row sharing a value code (odds 2⁻⁶⁴) would read as unchanged; two text keys sharing a code
(odds ~n²/2⁶⁵ for n keys) would pair the wrong rows. Only the rows that changed are read again,
to export them sanitized as the JSON tier is (`export_table`).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa

from . import json_export, pgtypes, sanitize
from .arrow_memory import arrow_pool
from .catalog import Catalog, Table
from .quality.windows import WINDOW_ROWS, Spill, partitions_for
from .storage import SnapshotStore

_NONE = np.empty(0, dtype=np.int64)

# Rows coded at a time. Coding a row makes a Python string of its JSON text for pandas to hash:
# batches of 65,536 rows of the 2M-row bench database's `users` took the process to ~570 MB,
# 8,192 rows to ~250 MB, for the same speed.
CODE_BATCH_ROWS = 8192


@dataclass
class TableChanges:
    table: str
    before: Table | None  # None: the table is new
    after: Table | None  # None: the table is gone
    key: list[str]  # the columns rows are matched by; empty: the whole row
    rows_before: int
    rows_after: int
    added: np.ndarray  # row positions in the later snapshot
    changed: np.ndarray  # row positions in the later snapshot
    removed: np.ndarray  # row positions in the earlier snapshot

    @property
    def columns_added(self) -> list[str]:
        return _names(self.after, self.before)

    @property
    def columns_removed(self) -> list[str]:
        return _names(self.before, self.after)

    def summary(self) -> dict:
        return {
            "table": self.table,
            "matched_by": self.key or "whole row",
            "rows_before": self.rows_before,
            "rows_after": self.rows_after,
            "added": len(self.added),
            "changed": len(self.changed),
            "removed": len(self.removed),
            "columns_added": self.columns_added,
            "columns_removed": self.columns_removed,
            "table_added": self.before is None,
            "table_removed": self.after is None,
        }


def _names(table: Table | None, other: Table | None) -> list[str]:
    """Columns of `table` that `other` lacks (none when either table is missing)."""
    if table is None or other is None:
        return []
    theirs = {c.name for c in other.columns}
    return [c.name for c in table.columns if c.name not in theirs]


def pairs(before: Catalog, after: Catalog) -> list[tuple[Table | None, Table | None]]:
    """The tables of two snapshots side by side: the later one's in its order, then those gone."""
    earlier = before.by_qualified()
    later = after.by_qualified()
    return [(earlier.get(t.qualified), t) for t in after.tables] + [
        (t, None) for t in before.tables if t.qualified not in later
    ]


def _shared_columns(before: Table | None, after: Table | None) -> list[str]:
    present = [t for t in (after, before) if t is not None]
    names = [c.name for c in present[0].columns]
    if len(present) == 2:
        theirs = {c.name for c in present[1].columns}
        names = [n for n in names if n in theirs]
    return names


def _match_key(before: Table | None, after: Table | None, shared: list[str]) -> list[str]:
    if before is None or after is None or not after.primary_key or tuple(before.primary_key) != tuple(after.primary_key):
        return []
    return list(after.primary_key) if set(after.primary_key) <= set(shared) else []


def _batches(store: SnapshotStore, table: Table, columns: list[str] | None) -> Iterator[pa.RecordBatch]:
    """The table's stored rows, only `columns` (None: all of them), as the table's own columns."""
    for batch in store.iter_batches(table, columns=columns or None, batch_size=CODE_BATCH_ROWS):
        batch = pgtypes.table_columns(batch)
        yield batch if columns is None else batch.select(columns)


def _text_codes(batch: pa.RecordBatch) -> np.ndarray:
    import pandas as pd

    texts = json_export.row_texts(batch).to_numpy(zero_copy_only=False)
    # categorize=False: rows are mostly distinct, and deduplicating them first costs ~6x the hashing.
    return pd.util.hash_array(texts, categorize=False).view(np.int64)


def _key_codes(batch: pa.RecordBatch) -> np.ndarray:
    column = batch.column(0)
    if batch.num_columns == 1 and pa.types.is_integer(column.type) and column.null_count == 0:
        return column.to_numpy().astype(np.int64, copy=False)
    return _text_codes(batch)


def _spill_codes(spill: Spill, store: SnapshotStore, table: Table, shared: list[str], key: list[str]) -> None:
    offset = 0
    for batch in _batches(store, table, shared):
        values = _text_codes(batch)
        keys = _key_codes(batch.select(key)) if key else values
        positions = np.arange(offset, offset + batch.num_rows, dtype=np.int64)
        spill.add(pa.record_batch({"key": keys, "row": values, "pos": positions}), keys)
        offset += batch.num_rows


def _compare_partition(before: pa.Table | None, after: pa.Table | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(added, changed, removed) row positions among one partition's rows."""
    if before is None:
        return (_NONE if after is None else after["pos"].to_numpy()), _NONE, _NONE
    if after is None:
        return _NONE, _NONE, before["pos"].to_numpy()
    old, new = before.to_pandas(), after.to_pandas()
    # Equal keys repeat only where whole rows are the key: the nth copy of a row matches the nth.
    old["nth"] = old.groupby("key").cumcount()
    new["nth"] = new.groupby("key").cumcount()
    merged = old.merge(new, on=["key", "nth"], how="outer", suffixes=("_before", "_after"), indicator=True)
    both = merged["_merge"] == "both"

    def positions(rows, column: str) -> np.ndarray:
        return merged.loc[rows, column].to_numpy().astype(np.int64)

    changed = both & (merged["row_before"] != merged["row_after"])
    return (
        positions(merged["_merge"] == "right_only", "pos_after"),
        positions(changed, "pos_after"),
        positions(merged["_merge"] == "left_only", "pos_before"),
    )


def compare_table(
    old: SnapshotStore, new: SnapshotStore, before: Table | None, after: Table | None, *, window_rows: int = WINDOW_ROWS
) -> TableChanges:
    """What changed in one table from snapshot `old` to snapshot `new`, comparing about
    `window_rows` rows' codes at a time."""
    with arrow_pool("system"):  # what each batch frees goes back to the system (see arrow_memory)
        return _compare_table(old, new, before, after, window_rows)


def _compare_table(old: SnapshotStore, new: SnapshotStore, before: Table | None, after: Table | None, window_rows: int) -> TableChanges:
    shared = _shared_columns(before, after)
    key = _match_key(before, after, shared)
    rows_before = old.parquet_rows(before) if before is not None else 0
    rows_after = new.parquet_rows(after) if after is not None else 0
    count = partitions_for(max(rows_before, rows_after), window_rows)
    found: list[list[np.ndarray]] = [[], [], []]
    with tempfile.TemporaryDirectory(prefix="skillswap-changes-") as tmp:
        spills = []
        for store, table in ((old, before), (new, after)):
            spill = Spill(Path(tmp), count)
            if table is not None:
                _spill_codes(spill, store, table, shared, key)
            spill.close()
            spills.append(spill)
        for p in range(count):
            for kind, positions in enumerate(_compare_partition(spills[0].read(p), spills[1].read(p))):
                found[kind].append(positions)
    added, changed, removed = (np.sort(np.concatenate(parts)) if parts else _NONE for parts in found)
    name = (after or before).qualified
    return TableChanges(name, before, after, key, rows_before, rows_after, added, changed, removed)


# ---- the export ---------------------------------------------------------------------------------


def _rows_at(store: SnapshotStore, table: Table, positions: np.ndarray, columns: list[str] | None) -> Iterator[pa.RecordBatch]:
    """The stored rows at sorted `positions`, a batch at a time."""
    offset = 0
    for batch in _batches(store, table, columns):
        low, high = np.searchsorted(positions, [offset, offset + batch.num_rows])
        if high > low:
            yield batch.take(pa.array(positions[low:high] - offset))
        offset += batch.num_rows
        if offset > (positions[-1] if len(positions) else -1):
            return


def _write_rows(sink: BinaryIO, batches: Iterator[pa.RecordBatch], plan: sanitize.TablePlan) -> None:
    """A JSON array of sanitized rows, one per line."""
    sink.write(b"[")
    first = True
    for batch in batches:
        block = json_export.batch_bytes(plan.apply(batch), ",\n")
        sink.write(b"\n" if first else b",\n")
        sink.write(block[:-2])
        first = False
    sink.write(b"]" if first else b"\n]")


def export_table(
    changes: TableChanges, old: SnapshotStore, new: SnapshotStore, sink: BinaryIO, *,
    policy: sanitize.SanitizePolicy, anonymize: bool, catalogs: tuple[Catalog, Catalog],
) -> None:
    """The rows added and changed (as they are now) and the keys of those removed (the whole
    rows, where rows are matched by the whole row), sanitized as the JSON tier is, as one JSON object."""
    with arrow_pool("system"):
        _export_table(changes, old, new, sink, policy=policy, anonymize=anonymize, catalogs=catalogs)


def _export_table(changes, old, new, sink, *, policy, anonymize, catalogs) -> None:
    head = {**changes.summary(), "since": old.partition_key, "snapshot": new.partition_key}
    plans = [
        sanitize.plan_table(table, policy, anonymize=anonymize, catalog=catalog) if table is not None else None
        for table, catalog in ((changes.before, catalogs[0]), (changes.after, catalogs[1]))
    ]
    excluded = next((p for p in plans if p is not None and p.excluded), None)
    if excluded is not None:
        head["excluded"] = f"left out of the JSON tier: {excluded.reasons.get('', '')}"
        sink.write(json.dumps(head, indent=1).encode() + b"\n")
        return
    sink.write(json.dumps(head, indent=1)[:-2].encode())  # the object stays open for the rows
    sections = (
        ("rows_added", new, changes.after, changes.added, None, plans[1]),
        ("rows_changed", new, changes.after, changes.changed, None, plans[1]),
        ("rows_removed", old, changes.before, changes.removed, changes.key or None, plans[0]),
    )
    for name, store, table, positions, columns, plan in sections:
        sink.write(f',\n "{name}": '.encode())
        if len(positions):
            _write_rows(sink, _rows_at(store, table, positions, columns), plan)
        else:
            sink.write(b"[]")
    sink.write(b"\n}\n")
