"""Render Arrow record batches as JSON objects, vectorised with Arrow compute.

Per-row Python (`to_pylist` + `json.dumps`) costs seconds per million rows, and pandas'
`to_json` rounds big integers and floats; this builds each column's JSON text in C++ instead.
Values are exact: integers as integers, floats in shortest round-trip form (NaN and ±Infinity,
which JSON lacks, as strings), temporal values and bytes in PostgreSQL's own text form.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

from . import pgtypes

_ESCAPES = [("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")]
_OTHER_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"


def _quoted(strings: pa.Array) -> pa.Array:
    escaped = strings
    for raw, replacement in _ESCAPES:
        escaped = pc.replace_substring(escaped, raw, replacement)
    quoted = pc.binary_join_element_wise('"', escaped, '"', "")
    rare = pc.match_substring_regex(strings, _OTHER_CONTROL)
    if pc.any(rare).as_py():
        # Rare control characters need \u escapes, which Arrow cannot compute; let json do them.
        exact = pa.array([None if s is None else json.dumps(s, ensure_ascii=False) for s in strings.to_pylist()])
        quoted = pc.if_else(rare, exact, quoted)
    return quoted


def _float_text(array: pa.Array) -> pa.Array:
    text = array.cast(pa.string())
    for raw, replacement in (("nan", '"NaN"'), ("inf", '"Infinity"'), ("-inf", '"-Infinity"')):
        text = pc.if_else(pc.equal(text, raw), replacement, text)
    return text


def value_text(array: pa.Array, field: pa.Field) -> pa.Array:
    """JSON text for every value of one column (nulls as `null`)."""
    encoding = (field.metadata or {}).get(b"encoding", b"").decode()
    kind = array.type
    if encoding in ("epoch_days", "epoch_us"):
        text = _quoted(pgtypes.temporal_text(array, encoding, "with time zone" in field.metadata[b"pg_base_type"].decode()))
    elif pa.types.is_binary(kind):
        text = _quoted(pgtypes.bytea_text(array))
    elif pa.types.is_boolean(kind) or pa.types.is_integer(kind):
        text = array.cast(pa.string())
    elif pa.types.is_floating(kind):
        text = _float_text(array)
    else:
        text = _quoted(array.cast(pa.string()))
    return pc.fill_null(text, "null")


def batch_lines(batch: pa.RecordBatch) -> list[str]:
    """One JSON object per row, in column order."""
    pieces = []
    for index, field in enumerate(batch.schema):
        key = json.dumps(field.name, ensure_ascii=False) + ":"
        pieces.append(pc.binary_join_element_wise(key, value_text(batch.column(index), field), ""))
    if not pieces:
        return ["{}"] * batch.num_rows
    rows = pc.binary_join_element_wise(*pieces, ",")
    return pc.binary_join_element_wise("{", rows, "}", "").to_pylist()
