"""JSON rendering of stored batches (lib/json_export.py): exact text per type, nulls as `null`,
every string escaped as JSON requires, one valid object per row."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa

from skillswap_backup.lib import json_export, pgtypes
from skillswap_backup.lib.catalog import Column, Table


def _table(*columns: tuple[str, str, bool]) -> Table:
    return Table(
        schema="public", name="t",
        columns=tuple(
            Column(name=name, pg_type=pg_type, base_type=pg_type, type_kind="b", is_array=False, not_null=not_null)
            for name, pg_type, not_null in columns
        ),
    )


def _lines(table: Table, values: dict[str, list]) -> list[str]:
    schema = pgtypes.arrow_schema(table)
    batch = pa.RecordBatch.from_arrays([pa.array(values[f.name], f.type) for f in schema], schema=schema)
    lines = json_export.batch_lines(batch)
    block = bytes(json_export.batch_bytes(batch, "\n")).decode()
    assert block == "".join(line + "\n" for line in lines)
    return lines


STRINGS = ['quote " back \\ slash', "tab\tline\nbreak\rcr", "bell \x07 and \x1f", "ünïcödé ☃", "", None]


def test_every_type_is_rendered_exactly_and_nulls_as_null():
    table = _table(
        ("id", "integer", True), ("n", "bigint", False), ("ok", "boolean", False), ("x", "double precision", False),
        ("s", "text", False), ("name", "text", True), ("day", "date", False), ("at", "timestamp with time zone", False),
        ("raw", "bytea", False),
    )
    lines = _lines(table, {
        "id": [1, 2, 3, 4, 5, 6],
        "n": [2**63 - 1, -(2**63), 0, None, 7, 8],
        "ok": [True, False, None, True, False, True],
        "x": [float("nan"), float("inf"), float("-inf"), -0.0, 0.1, None],
        "s": STRINGS,
        "name": ["a", 'b"', "c\\", "d", "e", "f"],
        "day": [dt.date(2024, 2, 29), None, dt.date(1970, 1, 1), dt.date(1, 1, 1), dt.date(9999, 12, 31), dt.date(2000, 1, 1)],
        "at": [dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=dt.timezone.utc), None, None, None, None,
               dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)],
        "raw": [b"\x00\xff", None, b"", None, None, None],
    })
    assert lines == [
        '{"id":1,"n":9223372036854775807,"ok":true,"x":"NaN","s":"quote \\" back \\\\ slash","name":"a",'
        '"day":"2024-02-29","at":"2024-01-02 03:04:05.123456+00","raw":"\\\\x00ff"}',
        '{"id":2,"n":-9223372036854775808,"ok":false,"x":"Infinity","s":"tab\\tline\\nbreak\\rcr","name":"b\\"",'
        '"day":null,"at":null,"raw":null}',
        '{"id":3,"n":0,"ok":null,"x":"-Infinity","s":"bell \\u0007 and \\u001f","name":"c\\\\",'
        '"day":"1970-01-01","at":null,"raw":"\\\\x"}',
        '{"id":4,"n":null,"ok":true,"x":-0,"s":"ünïcödé ☃","name":"d","day":"0001-01-01","at":null,"raw":null}',
        '{"id":5,"n":7,"ok":false,"x":0.1,"s":"","name":"e","day":"9999-12-31","at":null,"raw":null}',
        '{"id":6,"n":8,"ok":true,"x":null,"s":null,"name":"f","day":"2000-01-01","at":"1970-01-01 00:00:00.000000+00","raw":null}',
    ]
    assert [json.loads(line)["s"] for line in lines] == STRINGS


def test_a_column_without_nulls_and_one_with_only_nulls():
    table = _table(("a", "text", True), ("b", "text", False), ("c", "integer", False))
    lines = _lines(table, {"a": ['x"y', "z"], "b": [None, None], "c": [None, None]})
    assert lines == ['{"a":"x\\"y","b":null,"c":null}', '{"a":"z","b":null,"c":null}']
