"""Validating tables of any size in flat memory: windows of rows, keys checked in hash partitions.

A table's frame (see `frames`) holds ~20 bytes a row, and building it briefly ~50 more: the
1.85M-row `skills` table of the 4M-row bench database took its validating process from 124 to
244 MB, 46 MB more than the 927k rows of the 2M-row one. Past `WINDOW_ROWS` rows a table is
validated a window of rows at a time instead, so memory no longer grows with the table (the
biggest tables' validating processes: 216 MB at 2M rows, 222 MB at 4M; the cost: ~0.3 s more
CPU per million rows, for the spilled keys and a GX run per window):

- uniqueness and foreign keys span the whole table. Their keys are spilled to hash partitions on
  disk (Arrow IPC files in a temporary folder), equal keys always to the same partition, so each
  partition is checked alone, exactly, by the code small tables use. That yields the positions of
  the rows that share a key and of the orphan rows (few, on data worth restoring);
- each window becomes an ordinary frame indexed by the rows' positions: NOT NULL masks, the values
  CHECK rules compare, and the "unique" / "parent exists" flags, False at those positions.
  Great Expectations validates each window, and `merged` folds the windows' results into one per
  expectation (counts summed, samples in row order); the row count is validated once, on a frame
  of no columns (a pandas RangeIndex holds no rows in memory).

A foreign key whose parent table has more than `WINDOW_ROWS` rows is checked in partitions too,
whatever the size of the child.
"""

from __future__ import annotations

import itertools
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..catalog import Catalog, ForeignKey, Table
from .frames import (
    ROW_INDEX,
    Frame,
    compared_column,
    fk_column_name,
    parent_exists,
    stream_batches,
    to_pandas,
    unique_column_name,
    uniqueness,
)
from .plan import TablePlan
from .readers import SnapshotReader
from .results import SAMPLE_LIMIT

# Rows validated at a time, and about the most rows of keys one partition holds: ~+95 MB for the
# validating process (1M-row windows: ~+130 MB; one frame of 927k rows: ~+75 MB).
WINDOW_ROWS = 500_000

MAX_PARTITIONS = 128  # open files while keys are spilled (a process may have only 1024)
_KEY = "__key__"


def needed(
    table: Table, plan: TablePlan, reader: SnapshotReader, catalog: Catalog | None, rows: int, *, window_rows: int
) -> bool:
    """Whether the table, or a foreign key's parent, is too large for one frame."""
    if rows > window_rows:
        return True
    tables = catalog.by_qualified() if catalog is not None else {}
    parents = {r.foreign_key.ref_qualified for r in plan.rules if r.kind == "foreign_key"}
    return any(reader.row_count(tables[name]) > window_rows for name in parents if name in tables)


def partitions_for(rows: int, window_rows: int) -> int:
    """Partitions of about `window_rows` rows each; at most MAX_PARTITIONS files are open at once
    (so past 64M rows, in windows of 500k, a partition holds more)."""
    return min(MAX_PARTITIONS, max(1, math.ceil(rows / window_rows)))


def _codes(columns: list[pa.Array]) -> np.ndarray:
    """A 64-bit code per row, equal for equal keys, computed row by row (the same in any batch):
    an integer key is its own code, any other is hashed (as the frames hash unique keys)."""
    import pandas as pd

    if len(columns) == 1 and pa.types.is_integer(columns[0].type):
        return pc.fill_null(columns[0], 0).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    frame = to_pandas(pa.table({f"k{i}": column for i, column in enumerate(columns)}))
    return pd.util.hash_pandas_object(frame, index=False).to_numpy().view(np.int64)


class Spill:
    """Rows of keys spilled by code to `count` Arrow IPC files (a folder of their own under
    `folder`), then read back one partition at a time."""

    def __init__(self, folder: Path, count: int):
        own = Path(tempfile.mkdtemp(dir=folder))
        self.paths = [own / f"{p}.arrows" for p in range(count)]
        self._writers: list = [None] * count

    def add(self, batch: pa.RecordBatch, codes: np.ndarray) -> None:
        count = len(self.paths)
        partition = np.remainder(codes, count) if count > 1 else np.zeros(len(codes), dtype=np.int64)
        for p in np.unique(partition):
            if self._writers[p] is None:
                self._writers[p] = pa.ipc.new_stream(str(self.paths[p]), batch.schema)
            self._writers[p].write_batch(batch.filter(pa.array(partition == p)))

    def close(self) -> None:
        for writer in self._writers:
            if writer is not None:
                writer.close()

    def read(self, p: int) -> pa.Table | None:
        """Partition `p`'s rows; None when it has none."""
        if self._writers[p] is None:
            return None
        with pa.ipc.open_stream(str(self.paths[p])) as stream:
            return stream.read_all()


def _with_offsets(batches: Iterator[pa.RecordBatch]) -> Iterator[tuple[int, pa.RecordBatch]]:
    """(position of the batch's first row in the table, batch)."""
    offset = 0
    for batch in batches:
        yield offset, batch
        offset += batch.num_rows


def _positions(offset: int, rows: int) -> pa.Array:
    return pa.array(np.arange(offset, offset + rows, dtype=np.int64))


def duplicate_positions(
    reader: SnapshotReader, table: Table, columns: tuple[str, ...], *, any_missing_exempts: bool, partitions: int, folder: Path
) -> np.ndarray:
    """Sorted positions of the rows whose key another row shares (NULLs exempt as in `uniqueness`)."""
    import pandas as pd

    spill = Spill(folder, partitions)
    try:
        for offset, batch in _with_offsets(stream_batches(reader, table, list(columns))):
            missing = np.column_stack([c.is_null().to_numpy(zero_copy_only=False) for c in batch.columns])
            exempt = missing.any(axis=1) if any_missing_exempts else missing.all(axis=1)
            kept = np.flatnonzero(~exempt)
            codes = _codes(list(batch.columns))[kept]
            spill.add(pa.record_batch({_KEY: codes, ROW_INDEX: kept + offset}), codes)
    finally:
        spill.close()
    shared = [np.empty(0, dtype=np.int64)]
    for p in range(len(spill.paths)):
        part = spill.read(p)
        if part is None:
            continue
        flags = uniqueness(pd.DataFrame({_KEY: part.column(_KEY).to_numpy()}), [_KEY], any_missing_exempts=False)
        shared.append(part.column(ROW_INDEX).to_numpy()[~flags])
    return np.sort(np.concatenate(shared))


def _common_type(child: pa.DataType, parent: pa.DataType) -> pa.DataType:
    """The type both sides of a key are compared in, decided from the types alone (batch by
    batch, every batch must be cast alike)."""
    if child == parent:
        return parent
    if pa.types.is_integer(child) and pa.types.is_integer(parent):
        return pa.int64()
    return pa.string()


def _cast(batch: pa.RecordBatch, types: list[pa.DataType]) -> list[pa.Array]:
    return [column if column.type == type_ else column.cast(type_) for column, type_ in zip(batch.columns, types)]


def orphan_positions(
    reader: SnapshotReader, child: Table, fk: ForeignKey, parent: Table, *, partitions: int, folder: Path
) -> np.ndarray:
    """Sorted positions of `child`'s rows whose key `parent` lacks (MATCH SIMPLE: a NULL part passes)."""
    count = partitions
    child_batches = stream_batches(reader, child, list(fk.columns))
    parent_batches = stream_batches(reader, parent, list(fk.ref_columns))
    first_child, first_parent = next(child_batches, None), next(parent_batches, None)
    if first_child is None:
        return np.empty(0, dtype=np.int64)
    child_types = [f.type for f in first_child.schema]
    parent_types = [f.type for f in first_parent.schema] if first_parent is not None else child_types
    types = [_common_type(c, p) for c, p in zip(child_types, parent_types)]
    names = [f"k{i}" for i in range(len(types))]

    parents, children = Spill(folder, count), Spill(folder, count)
    try:
        if first_parent is not None:
            for batch in itertools.chain([first_parent], parent_batches):
                columns = _cast(batch, types)
                parents.add(pa.record_batch(columns, names=names), _codes(columns))
        for offset, batch in _with_offsets(itertools.chain([first_child], child_batches)):
            columns = _cast(batch, types)
            rows = pa.record_batch([*columns, _positions(offset, batch.num_rows)], names=[*names, ROW_INDEX])
            children.add(rows, _codes(columns))
    finally:
        parents.close()
        children.close()
    empty_parent = pa.table({name: pa.array([], type_) for name, type_ in zip(names, types)})
    orphans = [np.empty(0, dtype=np.int64)]
    for p in range(count):
        kids = children.read(p)
        if kids is None:
            continue
        known = parents.read(p)
        exists = parent_exists(kids.drop_columns([ROW_INDEX]), known if known is not None else empty_parent)
        orphans.append(kids.column(ROW_INDEX).to_numpy()[~exists])
    return np.sort(np.concatenate(orphans))


def windowed(
    table: Table, plan: TablePlan, reader: SnapshotReader, catalog: Catalog | None, *, rows: int, folder: Path,
    window_rows: int = WINDOW_ROWS,
) -> tuple[Frame, Iterator[Frame]]:
    """The table's frame in windows of rows: (what the windows share, the windows).

    The shared frame holds no rows: it maps rules to columns, and knows the orphan rows (their
    count, the first ones to show); offending rows are named by position and read back."""
    import pandas as pd

    by_qualified = catalog.by_qualified() if catalog is not None else {table.qualified: table}
    unique_keys = {tuple(k) for k in table.unique_keys} - {tuple(table.primary_key)}
    summary = Frame(df=None, key_columns=list(table.primary_key), column_for_rule={}, positional=True)
    false_at: dict[str, np.ndarray] = {}  # derived column -> sorted positions where it is False
    for index, rule in enumerate(plan.rules):
        if rule.kind in ("unique", "compound_unique"):
            name = unique_column_name(rule.columns)
            if name not in false_at:
                exempt = rule.kind == "unique" or rule.columns in unique_keys
                false_at[name] = duplicate_positions(
                    reader, table, rule.columns, any_missing_exempts=exempt,
                    partitions=partitions_for(rows, window_rows), folder=folder,
                )
            summary.column_for_rule[index] = name
        elif rule.kind == "foreign_key":
            fk = rule.foreign_key
            parent = by_qualified[fk.ref_qualified]
            orphans = orphan_positions(
                reader, table, fk, parent, folder=folder,
                partitions=partitions_for(max(rows, reader.row_count(parent)), window_rows),
            )
            name = fk_column_name(fk)
            false_at[name] = orphans
            summary.fk_orphans[fk.name] = int(len(orphans))
            summary.fk_positions[fk.name] = [int(p) for p in orphans[:SAMPLE_LIMIT]]
            summary.column_for_rule[index] = name
        elif rule.columns:
            summary.column_for_rule[index] = rule.columns[0]

    compared = list(dict.fromkeys(c for r in plan.rules if r.kind in ("between", "in_set") for c in r.columns))
    masked = list(dict.fromkeys(r.columns[0] for r in plan.rules if r.kind == "not_null" and r.columns[0] not in compared))

    def window(start: int, data: pa.Table | None, count: int) -> Frame:
        extra: dict[str, object] = {}
        numeric: dict[str, str] = {}
        for index, rule in enumerate(plan.rules):
            if rule.kind in ("between", "in_set"):
                summary.column_for_rule[index] = compared_column(rule, data, extra, numeric)
        df = to_pandas(data.select(compared)) if compared else pd.DataFrame(index=pd.RangeIndex(count))
        for column in masked:
            valid = data.column(column).to_numpy(zero_copy_only=False)  # see `slim`
            df[column] = pd.arrays.BooleanArray(np.ones(count, dtype=bool), ~valid)
        for name, values in extra.items():
            df[name] = values
        for name, positions in false_at.items():
            flags = np.ones(count, dtype=bool)
            low, high = np.searchsorted(positions, [start, start + count])
            flags[positions[low:high] - start] = False
            df[name] = flags
        df.index = pd.RangeIndex(start, start + count)  # GX names offending rows by their positions
        return Frame(df=df, key_columns=summary.key_columns, column_for_rule=summary.column_for_rule, positional=True)

    def slim(batch: pa.RecordBatch) -> pa.RecordBatch:
        """The compared columns' values, and only whether the masked ones hold a value: a long
        text column a NOT NULL rule reads is never kept a window long."""
        return pa.record_batch(
            [*(batch.column(c) for c in compared), *(batch.column(c).is_valid() for c in masked)], names=[*compared, *masked]
        )

    def windows() -> Iterator[Frame]:
        read = [*compared, *masked]
        if not read:
            for start in range(0, max(rows, 1), window_rows):
                yield window(start, None, min(window_rows, rows - start))
            return
        start, pending, pending_rows = 0, [], 0
        for batch in map(slim, stream_batches(reader, table, read)):
            while pending_rows + batch.num_rows >= window_rows:  # a window ends inside this batch
                taken = window_rows - pending_rows
                pending.append(batch.slice(0, taken))
                yield window(start, pa.Table.from_batches(pending), window_rows)
                start, pending, pending_rows, batch = start + window_rows, [], 0, batch.slice(taken)
            if batch.num_rows:
                pending.append(batch)
                pending_rows += batch.num_rows
        if pending_rows:
            yield window(start, pa.Table.from_batches(pending), pending_rows)
        elif start == 0:  # no rows at all: one empty window, so every expectation runs
            empty = reader.read_columns(table, compared)
            yield window(0, pa.table({**{c: empty.column(c) for c in compared}, **{c: pa.array([], pa.bool_()) for c in masked}}), 0)
        if start + pending_rows != rows:
            raise ValueError(f"{table.qualified} has {start + pending_rows} rows in its columns, {rows} in its files")

    return summary, windows()


def merged(window_results: list, count_result):
    """One GX suite result from the windows' results and the row count's: per expectation, the
    counts summed and the first offending rows (in row order) kept."""
    base = count_result
    by_rule: dict[int, list] = {}
    for result in window_results:
        for item in result.results:
            by_rule.setdefault(int(item.expectation_config.meta["rule"]), []).append(item)
    items = [*count_result.results, *(_merged_item(found) for _, found in sorted(by_rule.items()))]
    base.results = items
    base.success = all(item.success for item in items)
    passed = sum(1 for item in items if item.success)
    base.statistics = {
        "evaluated_expectations": len(items),
        "successful_expectations": passed,
        "unsuccessful_expectations": len(items) - passed,
        "success_percent": 100.0 * passed / len(items) if items else None,
    }
    return base


def _percent(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


def _merged_item(items: list):
    first = items[0]
    if len(items) == 1:
        return first
    parts = [item.result or {} for item in items]
    elements = sum(p.get("element_count", 0) for p in parts)
    missing = sum(p.get("missing_count", 0) for p in parts)
    unexpected = sum(p.get("unexpected_count", 0) for p in parts)
    result = dict(parts[0])
    result["element_count"], result["unexpected_count"] = elements, unexpected
    if "missing_count" in result:  # GX's unexpected_percent then counts non-missing values only
        result["missing_count"], result["missing_percent"] = missing, _percent(missing, elements)
        result["unexpected_percent"] = _percent(unexpected, elements - missing)
        result["unexpected_percent_nonmissing"] = _percent(unexpected, elements - missing)
        result["unexpected_percent_total"] = _percent(unexpected, elements)
    else:
        result["unexpected_percent"] = _percent(unexpected, elements)
    for key in ("partial_unexpected_list", "partial_unexpected_index_list"):
        if key in result:
            result[key] = [v for p in parts for v in p.get(key) or []][:SAMPLE_LIMIT]
    if "partial_unexpected_counts" in result:
        counts: dict[str, dict] = {}
        for p in parts:
            for entry in p.get("partial_unexpected_counts") or []:
                seen = counts.setdefault(repr(entry["value"]), {"value": entry["value"], "count": 0})
                seen["count"] += entry["count"]
        result["partial_unexpected_counts"] = sorted(counts.values(), key=lambda e: -e["count"])[:SAMPLE_LIMIT]
    first.result = result
    first.success = all(item.success for item in items)
    failed = [item for item in items if (item.exception_info or {}).get("raised_exception")]
    if failed:
        first.exception_info = failed[0].exception_info
    return first
