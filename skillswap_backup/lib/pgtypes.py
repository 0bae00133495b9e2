"""PostgreSQL column types <-> Arrow, lossless in both directions.

Every column gets one *encoding*, chosen by `encoding_for` from its (domain-resolved) type:

- ``native``    values whose PostgreSQL text form Arrow parses and prints exactly
                (integers, floats incl. NaN/±Infinity/-0, booleans, text, uuid);
- ``epoch_days`` dates as days since 1970-01-01 (Arrow date32); PostgreSQL's own infinity
                sentinels (int32 min/max) keep ±infinity, negative days keep BC dates;
- ``epoch_us``  timestamp / timestamptz as microseconds since the epoch (Arrow timestamp[us],
                UTC for timestamptz); int64 min/max are ±infinity, as inside PostgreSQL;
- ``bytea``     raw bytes (Arrow binary);
- ``pg_text``   everything else (numeric, interval, time, json, arrays, ranges, enums, inet, …)
                kept as PostgreSQL's own text form, which PostgreSQL reads back exactly.

The backup selects each column's `read_expression` through ADBC (`table_reader`), which decodes
PostgreSQL's binary COPY into Arrow; the restore turns record batches back into CSV text for
``COPY … FROM STDIN``. Both directions are pure functions of the catalog, tested per type.
"""

from __future__ import annotations

import datetime as dt
import io
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from psycopg import sql

from .catalog import Column, Table

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

NATIVE_TYPES: dict[str, pa.DataType] = {
    "smallint": pa.int16(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "real": pa.float32(),
    "double precision": pa.float64(),
    "boolean": pa.bool_(),
    "text": pa.string(),
    "uuid": pa.string(),
    "name": pa.string(),
    "citext": pa.string(),
}
_STRING_PREFIXES = ("character varying", "character(", "character", "varchar")

# Session settings that make the text forms above unambiguous, for reading and for writing.
SESSION_SETTINGS = {
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "TimeZone": "UTC",
    "extra_float_digits": "3",
    "bytea_output": "hex",
    # As pg_dump: a row-level security policy that would hide rows from this role makes the read
    # fail instead of silently leaving those rows out of the backup (and out of its count(*)).
    "row_security": "off",
}


def session_settings_query() -> sql.Composed:
    """One SELECT that applies SESSION_SETTINGS to the session running it."""
    return sql.SQL("SELECT {}").format(
        sql.SQL(", ").join(
            sql.SQL("set_config({}, {}, false)").format(sql.Literal(name), sql.Literal(value))
            for name, value in SESSION_SETTINGS.items()
        )
    )


def apply_session_settings(conn) -> None:
    """SESSION_SETTINGS on `conn`, in one round trip."""
    conn.execute(session_settings_query())


def encoding_for(column: Column) -> str:
    base = column.base_type
    if column.is_array:
        return "pg_text"
    if base in NATIVE_TYPES or base.startswith(_STRING_PREFIXES):
        return "native"
    if base == "date":
        return "epoch_days"
    if base.startswith(("timestamp without time zone", "timestamp with time zone")) or re.fullmatch(
        r"timestamp\(\d\) with(out)? time zone", base
    ):
        return "epoch_us"
    if base == "bytea":
        return "bytea"
    return "pg_text"


def arrow_type(column: Column) -> pa.DataType:
    """The Arrow type a column is stored as in Parquet."""
    encoding = encoding_for(column)
    if encoding == "native":
        return NATIVE_TYPES.get(column.base_type, pa.string())
    if encoding == "epoch_days":
        return pa.date32()
    if encoding == "epoch_us":
        return pa.timestamp("us", tz="UTC" if "with time zone" in column.base_type else None)
    if encoding == "bytea":
        return pa.binary()
    return pa.string()


def read_expression(column: Column) -> sql.Composable:
    """What the backup selects for `column`: a value ADBC decodes exactly into `arrow_type`.

    Dates and timestamps become epoch integers (infinity as the int extremes); every pg_text
    type becomes the text its output function prints, as COPY did (`format('%s', …)` calls it;
    a `::text` cast may call another function: inet's prints `1.2.3.4/32` for `1.2.3.4`); uuid
    and citext, which the driver does not decode to text, are cast (both casts give the output
    text); a domain is read as its base type.
    """
    ident = sql.Identifier(column.name)
    encoding = encoding_for(column)
    if encoding == "epoch_days":
        return sql.SQL(
            "CASE WHEN {c} = 'infinity' THEN {hi} WHEN {c} = '-infinity' THEN {lo} "
            "ELSE {c} - DATE '1970-01-01' END"
        ).format(c=ident, hi=sql.Literal(INT32_MAX), lo=sql.Literal(INT32_MIN))
    if encoding == "epoch_us":
        return sql.SQL(
            "CASE WHEN {c} = 'infinity' THEN {hi} WHEN {c} = '-infinity' THEN {lo} "
            "ELSE (extract(epoch FROM {c}) * 1000000)::bigint END"
        ).format(c=ident, hi=sql.Literal(INT64_MAX), lo=sql.Literal(INT64_MIN))
    if encoding == "pg_text":
        # num_nulls, not IS NULL: a composite whose fields are all NULL "IS NULL" but is a value,
        # printed "(,)"; only a NULL datum is NULL.
        return sql.SQL("CASE WHEN num_nulls({c}) = 1 THEN NULL ELSE format('%s', {c}) END").format(c=ident)
    if column.base_type in ("uuid", "citext"):
        return sql.SQL("{c}::text").format(c=ident)
    if column.base_type != column.pg_type:
        return sql.SQL("{c}::{t}").format(c=ident, t=sql.SQL(column.base_type))
    return ident


# Parquet knows how many rows a file holds only through its columns. A table without columns
# (legal in PostgreSQL: every column dropped, or a marker table) keeps its rows as this one
# all-null column, which costs nothing to store and is never shown or restored.
ROWS_PLACEHOLDER = "__skillswap_rows__"
_PLACEHOLDER_METADATA = {b"encoding": b"rows_placeholder"}  # a real column's always names its pg_type


def arrow_schema(table: Table) -> pa.Schema:
    if not table.columns:
        return pa.schema([pa.field(ROWS_PLACEHOLDER, pa.null(), metadata=_PLACEHOLDER_METADATA)], metadata={"pg_table": table.qualified})
    fields = [
        pa.field(
            c.name,
            arrow_type(c),
            nullable=not c.not_null,
            metadata={"pg_type": c.pg_type, "pg_base_type": c.base_type, "encoding": encoding_for(c)},
        )
        for c in table.columns
    ]
    return pa.schema(fields, metadata={"pg_table": table.qualified})


def to_stored_batch(read: pa.RecordBatch, table: Table, schema: pa.Schema) -> pa.RecordBatch:
    """Turn a batch as selected by `read_expression` into the stored Parquet representation."""
    if not table.columns:
        return pa.RecordBatch.from_arrays([pa.nulls(read.num_rows)], schema=schema)
    arrays = []
    for array, column, field in zip(read.columns, table.columns, schema):
        if encoding_for(column) in ("epoch_days", "epoch_us"):
            array = array.cast(field.type)
        elif array.type != field.type:
            raise TypeError(
                f"{table.qualified}.{column.name} ({column.pg_type}) was read as {array.type}, "
                f"stored as {field.type}"
            )
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def table_columns(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A stored batch as the table's own columns (none for a table without columns)."""
    if batch.num_columns == 1 and batch.schema.field(0).metadata == _PLACEHOLDER_METADATA:
        return batch.drop_columns([ROWS_PLACEHOLDER])
    return batch


def _j2date(julian: int) -> tuple[int, int, int]:
    """PostgreSQL's j2date: Julian day number -> proleptic Gregorian (year, month, day)."""
    julian += 32044
    quad = julian // 146097
    extra = (julian - quad * 146097) * 4 + 3
    julian += 60 + quad * 3 + extra // 146097
    quad = julian // 1461
    julian -= quad * 1461
    y = julian * 4 // 1461
    julian = ((julian + 305) % 365 if y != 0 else (julian + 306) % 366) + 123
    y += quad * 4
    year = y - 4800
    quad = julian * 2141 // 65536
    day = julian - 7834 * quad // 256
    month = (quad + 10) % 12 + 1
    return year, month, day


_UNIX_EPOCH_JDATE = 2440588


def _date_text(days: int) -> str:
    if days == INT32_MAX:
        return "infinity"
    if days == INT32_MIN:
        return "-infinity"
    year, month, day = _j2date(days + _UNIX_EPOCH_JDATE)
    if year <= 0:
        return f"{1 - year:04d}-{month:02d}-{day:02d} BC"
    return f"{year:04d}-{month:02d}-{day:02d}"


def _timestamp_text(micros: int, with_tz: bool) -> str:
    if micros == INT64_MAX:
        return "infinity"
    if micros == INT64_MIN:
        return "-infinity"
    days, rest = divmod(micros, 86_400_000_000)
    seconds, fraction = divmod(rest, 1_000_000)
    date = _date_text(days)
    era = ""
    if date.endswith(" BC"):
        date, era = date[:-3], " BC"
    clock = dt.time(seconds // 3600, seconds // 60 % 60, seconds % 60, fraction).isoformat("microseconds")
    return f"{date} {clock}{'+00' if with_tz else ''}{era}"


_FAST_RANGE_US = (-62135596800_000_000, 253402300799_999_999)  # 0001-01-01 .. 9999-12-31


def temporal_text(array: pa.Array, encoding: str, with_tz: bool) -> pa.Array:
    """Vectorised for years 1..9999; exact Python formatting for the rest (BC, infinity)."""
    micros = (
        array.cast(pa.int64()) if encoding == "epoch_us" else pc.multiply(array.cast(pa.int32()).cast(pa.int64()), 86_400_000_000)
    )
    in_range = pc.and_(pc.greater_equal(micros, _FAST_RANGE_US[0]), pc.less_equal(micros, _FAST_RANGE_US[1]))
    # Arrow's cast to string prints ISO text (6 fraction digits for µs), far faster than strftime.
    fast = array.cast(pa.string())
    if with_tz:
        fast = pc.replace_substring(fast, "Z", "+00")
    if pc.all(pc.or_kleene(in_range, pc.is_null(array))).as_py() is not False:
        return fast
    slow_values = array.cast(pa.int64() if encoding == "epoch_us" else pa.int32()).to_pylist()
    fast_values = fast.to_pylist()
    flags = in_range.to_pylist()
    out = []
    for value, quick, ok in zip(slow_values, fast_values, flags):
        if value is None or ok:
            out.append(quick)
        elif encoding == "epoch_us":
            out.append(_timestamp_text(value, with_tz))
        else:
            out.append(_date_text(value))
    return pa.array(out, pa.string())


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# Bytes hex-encoded at a time: the temporaries stay a few MB, however large one value is (Python's
# bytes.hex() of a 50 MB value held ~350 MB at once, and cost a Python call per value).
_HEX_CHUNK = 1 << 22


def _hex_digits(raw: np.ndarray) -> np.ndarray:
    """Two lowercase hex digits per byte."""
    out = np.empty(2 * len(raw), dtype=np.uint8)
    out[0::2] = _HEX_DIGITS[raw >> 4]
    out[1::2] = _HEX_DIGITS[raw & 15]
    return out


def bytea_text(array: pa.Array, *, prefix: str = "\\x") -> pa.Array:
    """Each value in PostgreSQL's hex form (`prefix`, `\\x`, and two digits a byte), NULLs kept.

    Built straight into one output buffer: the values are back to back in the input, so the
    output is their hex digits with `\\x` put before each. Many small values are encoded a
    group at a time (np.insert places the prefixes); one large value is written in chunks."""
    count = len(array)
    wide = np.int64 if pa.types.is_large_binary(array.type) else np.int32
    offsets = np.frombuffer(array.buffers()[1], dtype=wide)[array.offset : array.offset + count + 1].astype(np.int64)
    data = array.buffers()[2]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.empty(0, dtype=np.uint8)
    relative = offsets - offsets[0]
    lead = np.frombuffer(prefix.encode(), dtype=np.uint8)
    out_offsets = 2 * relative + len(lead) * np.arange(count + 1, dtype=np.int64)
    out = np.empty(int(out_offsets[-1]), dtype=np.uint8)
    first = 0
    while first < count:
        # Values [first, last) whose bytes fit in one chunk; a larger value goes alone.
        last = max(first + 1, int(np.searchsorted(relative, relative[first] + _HEX_CHUNK, side="right")) - 1)
        last = min(last, count)
        body = raw[offsets[first] : offsets[last]]
        start, end = int(out_offsets[first]), int(out_offsets[last])
        if last - first == 1:
            out[start : start + len(lead)] = lead
            for at in range(0, len(body), _HEX_CHUNK):
                piece = body[at : at + _HEX_CHUNK]
                out[start + len(lead) + 2 * at : start + len(lead) + 2 * (at + len(piece))] = _hex_digits(piece)
        else:
            prefixes = np.repeat(2 * (relative[first:last] - relative[first]), len(lead))
            out[start:end] = np.insert(_hex_digits(body), prefixes, np.tile(lead, last - first))
        first = last
    if out_offsets[-1] > np.iinfo(np.int32).max:
        raise ValueError("bytea values of one batch exceed 2 GB in hex form")
    validity = array.is_valid().buffers()[1] if array.null_count else None
    return pa.Array.from_buffers(
        pa.string(), count, [validity, pa.py_buffer(out_offsets.astype(np.int32)), pa.py_buffer(out)], array.null_count
    )


def restore_columns(table: Table) -> list[Column]:
    """Columns written by the restore: generated columns are recomputed by the target, not loaded."""
    return [c for c in table.columns if not c.generated]


def batch_to_copy_csv(batch: pa.RecordBatch, table: Table) -> bytes:
    """Render a stored batch as CSV that `COPY … (FORMAT csv)` reads back to identical values."""
    arrays = []
    for column in restore_columns(table):
        array = batch.column(column.name)
        encoding = encoding_for(column)
        if encoding in ("epoch_days", "epoch_us"):
            array = temporal_text(array, encoding, "with time zone" in column.base_type)
        elif encoding == "bytea":
            array = bytea_text(array)
        arrays.append(array)
    names = [f"c{i}" for i in range(len(arrays))]
    sink = io.BytesIO()
    pcsv.write_csv(
        pa.RecordBatch.from_arrays(arrays, names=names),
        sink,
        write_options=pcsv.WriteOptions(include_header=False, quoting_style="all_valid"),
    )
    return sink.getvalue()


def copy_in_sql(table: Table) -> sql.Composed:
    return sql.SQL("COPY {t} ({cols}) FROM STDIN (FORMAT csv)").format(
        t=sql.Identifier(table.schema, table.name),
        cols=sql.SQL(", ").join(sql.Identifier(c.name) for c in restore_columns(table)),
    )
