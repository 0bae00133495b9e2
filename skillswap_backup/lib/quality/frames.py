"""The small DataFrame each table is validated on: only the columns its rules need.

- key and constrained columns are read as they are (primary/unique keys, CHECK columns);
- columns that only must not be NULL become a NULL mask (True or NA), streamed batch by batch
  when the reader can, so a wide text column never sits in memory whole;
- each foreign key becomes one boolean column "parent exists", computed here with an Arrow
  hash lookup / anti-join against the parent's key columns from the same snapshot. Suites then
  expect that column to be True, so no parent key set is ever embedded in a suite or report;
- text and binary columns that only keys and unique rules read become 64-bit hashes
  ("email (hash)"), computed batch by batch: the strings are never all in memory, and GX works
  on integers (reading and dictionary-encoding the 1.85M names of the 4M-row bench database's
  `skills` peaked at ~300 MB more; hashes take 15 MB). Two different values sharing a hash
  (odds ~n²/2⁶⁵, 1e-7 at 2M rows) would be reported as a duplicate. Such a frame has no key
  columns for GX to name offending rows by: GX reports row positions, and `rows_at` reads back
  the real keys and values of those few rows;
- each unique rule (primary key, UNIQUE constraint) becomes one boolean column "(a, b) unique",
  computed here by sorting the key (or its 64-bit row hash): GX's own uniqueness expectations
  build a hash table per column in pandas (~90 MB more on a 1.85M-row key), this takes ~20 MB.
  Suites expect the column to be True, as for foreign keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import pgtypes
from ..catalog import Catalog, ForeignKey, Table
from .plan import Rule, TablePlan
from .readers import SnapshotReader
from .results import SAMPLE_LIMIT, plain

ROW_INDEX = "__row__"
NUMBER_SUFFIX = " (as number)"


def as_number(value):
    """A value stored as text (numeric, …) as the checks compare it."""
    import pandas as pd

    return plain(pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]) if value is not None else None


@dataclass
class Frame:
    df: object  # pandas.DataFrame
    key_columns: list[str]  # primary-key columns (table names) that name offending rows
    column_for_rule: dict[int, str]  # rule index -> df column the expectation reads
    renamed: dict[str, str] = field(default_factory=dict)  # table column -> df column (hashed keys)
    fk_samples: dict[str, list[dict]] = field(default_factory=dict)  # FK name -> offending child keys
    fk_orphans: dict[str, int] = field(default_factory=dict)
    fk_positions: dict[str, list[int]] = field(default_factory=dict)  # FK name -> orphan rows to read back
    row_values: dict[int, dict] = field(default_factory=dict)  # row position -> its values, read back
    positional: bool = False  # the df holds no keys at all, only the rows' positions (see windows)

    def col(self, name: str) -> str:
        """The df column holding table column `name`."""
        return self.renamed.get(name, name)

    @property
    def by_position(self) -> bool:
        """Offending rows are named by position (their keys are hashed in the df, or not in it)."""
        return bool(self.renamed) or self.positional


def fk_column_name(fk: ForeignKey) -> str:
    return f"{fk.name} (parent exists)"


def unique_column_name(columns: tuple[str, ...]) -> str:
    return f"({', '.join(columns)}) unique"


def _not_repeated(keys: np.ndarray) -> np.ndarray:
    """Per value: True unless another element equals it (by sorting: no hash table)."""
    ordered = np.sort(keys)
    repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    del ordered
    return ~np.isin(keys, repeated)


def uniqueness(df, columns: list[str], *, any_missing_exempts: bool) -> np.ndarray:
    """True for rows whose key no other row shares. A key with a NULL part is exempt when
    `any_missing_exempts` (a UNIQUE constraint, as PostgreSQL judges it), else only an all-NULL
    key is (NULL parts then compare equal, as in a primary key's check)."""
    import pandas as pd

    missing = df[columns].isna().to_numpy()
    exempt = missing.any(axis=1) if any_missing_exempts else missing.all(axis=1)
    kind = df[columns[0]].dtype.kind
    if len(columns) == 1 and not missing.any() and kind in "iu":
        keys = df[columns[0]].to_numpy(dtype="int64" if kind == "i" else "uint64")
    else:
        keys = pd.util.hash_pandas_object(df[columns], index=False).to_numpy()
    if not exempt.any():
        return _not_repeated(keys)
    flags = np.ones(len(df), dtype=bool)
    flags[~exempt] = _not_repeated(keys[~exempt])
    return flags


def _is_textual(type_: pa.DataType) -> bool:
    return pa.types.is_string(type_) or pa.types.is_large_string(type_)


def _needs_numeric(type_: pa.DataType) -> bool:
    return _is_textual(type_) or pa.types.is_decimal(type_)


def _codable(type_: pa.DataType) -> bool:
    return _is_textual(type_) or pa.types.is_binary(type_) or pa.types.is_large_binary(type_)


def to_pandas(table: pa.Table):
    import pandas as pd

    # Nullable pandas dtypes keep integer keys exact (no float64 detour when a column has NULLs).
    mapping = {
        pa.int8(): pd.Int8Dtype(),
        pa.int16(): pd.Int16Dtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.uint8(): pd.UInt8Dtype(),
        pa.uint16(): pd.UInt16Dtype(),
        pa.uint32(): pd.UInt32Dtype(),
        pa.uint64(): pd.UInt64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
    }
    return table.to_pandas(types_mapper=mapping.get, self_destruct=True, split_blocks=True)


def stream_batches(reader: SnapshotReader, table: Table, columns: list[str]):
    stream = getattr(reader, "iter_batches", None)
    return stream(table, columns) if stream else iter(reader.read_columns(table, columns).to_batches())


def _chunks(reader: SnapshotReader, table: Table, column: str, rows: int):
    """(offset, array) for each batch of one column, checked to add up to the table's `rows`."""
    offset = 0
    for batch in stream_batches(reader, table, [column]):
        array = batch.column(0)
        if offset + len(array) > rows:
            raise ValueError(f"{table.qualified}.{column} has more rows than the table's key columns")
        yield offset, array
        offset += len(array)
    if offset != rows:
        raise ValueError(f"{table.qualified}.{column} has {offset} rows, other columns {rows}")


def _is_valid(array: pa.Array) -> np.ndarray:
    return array.is_valid().to_numpy(zero_copy_only=False)


def _null_mask(reader: SnapshotReader, table: Table, column: str, rows: int):
    """True where the column has a value, NA where it is NULL, read without keeping the values."""
    import pandas as pd

    valid = np.empty(rows, dtype=bool)
    for offset, array in _chunks(reader, table, column, rows):
        valid[offset : offset + len(array)] = _is_valid(array)
    return pd.arrays.BooleanArray(np.ones(rows, dtype=bool), ~valid)


def _hashed(reader: SnapshotReader, table: Table, column: str, rows: int):
    """A 64-bit hash per value (NA where NULL), in one streamed pass over the column."""
    import pandas as pd

    values, valid = np.empty(rows, dtype=np.int64), np.empty(rows, dtype=bool)
    for offset, array in _chunks(reader, table, column, rows):
        end = offset + len(array)
        values[offset:end] = pd.util.hash_array(array.to_numpy(zero_copy_only=False), categorize=False).view(np.int64)
        valid[offset:end] = _is_valid(array)
    return pd.arrays.IntegerArray(values, ~valid)


def rows_at(reader: SnapshotReader, table: Table, positions, columns: list[str]) -> dict[int, dict]:
    """The values of `columns` in the rows at `positions` (reading order), streamed."""
    wanted = sorted(set(positions))
    found: dict[int, dict] = {}
    offset = next_wanted = 0
    for batch in stream_batches(reader, table, columns):
        local = []
        while next_wanted < len(wanted) and wanted[next_wanted] < offset + batch.num_rows:
            local.append(wanted[next_wanted] - offset)
            next_wanted += 1
        if local:
            for position, row in zip(local, batch.take(pa.array(local, pa.int64())).to_pylist()):
                found[offset + position] = plain(row)
        offset += batch.num_rows
        if next_wanted == len(wanted):
            break
    return found


def _align(child: pa.ChunkedArray, parent: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    if child.type == parent.type:
        return child, parent
    try:
        return child.cast(parent.type), parent
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return child.cast(pa.string()), parent.cast(pa.string())


def _signed_integer(type_: pa.DataType) -> bool:
    return pa.types.is_integer(type_) and pa.types.is_signed_integer(type_)


def _in_sorted(child: pa.ChunkedArray, parent: pa.ChunkedArray) -> np.ndarray:
    """Per child value: whether the parent has it, by binary search in the sorted parent keys
    (Arrow's is_in builds a hash set: ~90 MB more for the 1.85M skill ids of the 4M-row bench)."""
    keys = np.sort(pc.drop_null(parent).to_numpy().astype(np.int64, copy=False))
    values = pc.fill_null(child, 0).to_numpy().astype(np.int64, copy=False)  # NULLs: judged by the caller
    if len(keys) == 0:
        return np.zeros(len(values), dtype=bool)
    positions = np.minimum(np.searchsorted(keys, values), len(keys) - 1)
    return keys[positions] == values


def parent_exists(child: pa.Table, parent: pa.Table) -> np.ndarray:
    """Per child row: True when any FK column is NULL (MATCH SIMPLE) or the key exists in parent."""
    columns = child.column_names
    any_null = np.zeros(child.num_rows, dtype=bool)
    for name in columns:
        any_null |= child.column(name).is_null().to_numpy(zero_copy_only=False)
    if len(columns) == 1:
        left, right = _align(child.column(0), parent.column(0))
        if _signed_integer(left.type) and _signed_integer(right.type):
            return _in_sorted(left, right) | any_null
        found = pc.is_in(left, value_set=right.combine_chunks()).to_numpy(zero_copy_only=False)
        return found | any_null
    aligned_left, aligned_right = {}, {}
    for i, name in enumerate(columns):
        aligned_left[f"k{i}"], aligned_right[f"k{i}"] = _align(child.column(name), parent.column(i))
    keys = list(aligned_left)
    left_t = pa.table({**aligned_left, ROW_INDEX: pa.array(np.arange(child.num_rows, dtype=np.int64))})
    right_t = pa.table(aligned_right).group_by(keys).aggregate([])
    orphans = left_t.join(right_t, keys=keys, join_type="left anti").column(ROW_INDEX).to_numpy()
    found = np.ones(child.num_rows, dtype=bool)
    found[orphans] = False
    return found | any_null


def compared_column(rule: Rule, data: pa.Table, extra: dict[str, object], numeric: dict[str, str]) -> str:
    """The df column a between / in_set rule reads: the column itself, or its values as numbers
    (added to `extra` once per column, named in `numeric`) when a number is compared with text."""
    import pandas as pd

    column = rule.columns[0]
    wants_number = rule.kind == "between" or any(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in rule.value_set
    )
    if not (wants_number and _needs_numeric(data.schema.field(column).type)):
        return column
    # numeric and other exact types are stored as PostgreSQL text; compare as numbers.
    name = numeric.get(column)
    if name is None:
        name = numeric[column] = f"{column}{NUMBER_SUFFIX}"
        extra[name] = pd.to_numeric(data.column(column).cast(pa.string()).to_pandas(), errors="coerce")
    return name


def build_frame(table: Table, plan: TablePlan, reader: SnapshotReader, catalog: Catalog | None) -> Frame:
    import pandas as pd

    by_qualified = catalog.by_qualified() if catalog is not None else {table.qualified: table}
    order = [c.name for c in table.columns]
    raw: set[str] = set(table.primary_key)
    for rule in plan.rules:
        if rule.kind in ("unique", "compound_unique", "between", "in_set", "foreign_key"):
            raw.update(rule.columns)
    raw_columns = [c for c in order if c in raw]
    mask_columns = [r.columns[0] for r in plan.rules if r.kind == "not_null" and r.columns[0] not in raw]
    # Text keys only keys and unique rules read are hashed; values other rules compare are read.
    compared = {c for r in plan.rules if r.kind in ("between", "in_set", "foreign_key") for c in r.columns}
    hashed = [c for c in raw_columns if c not in compared and _codable(pgtypes.arrow_type(table.column(c)))]
    read = [c for c in raw_columns if c not in hashed]

    rows = reader.row_count(table)
    data = reader.read_columns(table, read) if read else None
    if data is not None:
        rows = data.num_rows
    key_columns = list(table.primary_key)

    column_for_rule: dict[int, str] = {}
    extra: dict[str, object] = {}
    fk_samples: dict[str, list[dict]] = {}
    fk_orphans: dict[str, int] = {}
    fk_positions: dict[str, list[int]] = {}
    parent_cache: dict[tuple, pa.Table] = {}
    numeric: dict[str, str] = {}

    for index, rule in enumerate(plan.rules):
        if rule.kind == "foreign_key":
            fk = rule.foreign_key
            parent_table = by_qualified[fk.ref_qualified]
            cache_key = (fk.ref_qualified, fk.ref_columns)
            if cache_key not in parent_cache:
                parent_cache[cache_key] = reader.read_columns(parent_table, list(fk.ref_columns))
            child = data.select(list(fk.columns))
            exists = parent_exists(child, parent_cache[cache_key])
            name = fk_column_name(fk)
            extra[name] = exists
            column_for_rule[index] = name
            orphan_rows = np.flatnonzero(~exists)
            fk_orphans[fk.name] = int(len(orphan_rows))
            shown = orphan_rows[:SAMPLE_LIMIT]
            if hashed:
                fk_positions[fk.name] = [int(p) for p in shown]  # keys read back with the other samples
            else:
                wanted = list(dict.fromkeys([*key_columns, *fk.columns]))
                picked = data.select(wanted).take(pa.array(shown, type=pa.int64())).to_pylist()
                fk_samples[fk.name] = [plain(row) for row in picked]
        elif rule.kind in ("between", "in_set") and data is not None:
            column_for_rule[index] = compared_column(rule, data, extra, numeric)
        else:
            column_for_rule[index] = rule.columns[0] if rule.columns else ""

    # FK child columns were only needed for the lookup and the samples taken above.
    used = set(column_for_rule.values())
    used |= {c for r in plan.rules if r.kind == "compound_unique" for c in r.columns}
    keep = [c for c in read if c in key_columns or c in used]
    renamed = {column: f"{column} (hash)" for column in hashed}
    column_for_rule = {i: renamed.get(c, c) for i, c in column_for_rule.items()}
    if data is not None and keep:
        df = to_pandas(data.select(keep))
    else:
        df = pd.DataFrame(index=pd.RangeIndex(rows))
    del data
    for column in hashed:
        df[renamed[column]] = _hashed(reader, table, column, rows)
    for column in mask_columns:
        df[column] = _null_mask(reader, table, column, rows)
    for name, values in extra.items():
        df[name] = values
    unique_keys = {tuple(k) for k in table.unique_keys} - {tuple(table.primary_key)}
    for index, rule in enumerate(plan.rules):
        if rule.kind in ("unique", "compound_unique"):
            name = unique_column_name(rule.columns)
            if name not in df:
                exempt = rule.kind == "unique" or rule.columns in unique_keys
                df[name] = uniqueness(df, [renamed.get(c, c) for c in rule.columns], any_missing_exempts=exempt)
            column_for_rule[index] = name
    return Frame(
        df=df,
        key_columns=key_columns,
        column_for_rule=column_for_rule,
        renamed=renamed,
        fk_samples=fk_samples,
        fk_orphans=fk_orphans,
        fk_positions=fk_positions,
    )
