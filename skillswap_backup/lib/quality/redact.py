"""Keep offending rows' values out of the plaintext reports of an encrypted snapshot.

A failed check names a few offending rows (≤ SAMPLE_LIMIT): their primary key and the values the
rule judged — an email that repeats, a name outside its CHECK. `reports/` stays plaintext so that
people and a backup host holding only the public key can read verdicts; for an encrypted snapshot
those values would be the only row data outside age. So there, samples keep integer primary-key
values only (they name the row, they say nothing about a person), every other value is replaced
by WITHHELD, GX's own lists of unexpected values are dropped from the Data Docs, and the full
samples go into `reports/samples.json`, encrypted like the data.
"""

from __future__ import annotations

from .results import TableQuality

SAMPLES = "reports/samples.json"
WITHHELD = f"(withheld: encrypted in {SAMPLES}.age)"
# Keys of a GX expectation result that list the offending values or their index columns.
_GX_VALUE_KEYS = (
    "partial_unexpected_list",
    "partial_unexpected_counts",
    "partial_unexpected_index_list",
    "unexpected_list",
    "unexpected_index_list",
    "unexpected_index_query",
)


def _is_integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _entry(entry: dict, keys: set[str]) -> dict:
    return {name: value if name in keys and _is_integer(value) else WITHHELD for name, value in entry.items()}


def redacted(result: TableQuality, primary_key: tuple[str, ...]) -> TableQuality:
    """A copy of `result` fit for plaintext: samples reduced to integer keys, GX value lists gone."""
    copy = TableQuality.from_dict(result.to_dict())
    keys = {*primary_key, "row"}  # "row": the position naming a row of a table without a key
    for family in copy.families.values():
        family.sample = [_entry(e, keys) for e in family.sample]
        for rule in family.rules:
            rule.sample = [_entry(e, keys) for e in rule.sample]
    for item in (copy.gx_result or {}).get("results", []):
        for name in _GX_VALUE_KEYS:
            (item.get("result") or {}).pop(name, None)
    return copy


def samples(results: list[TableQuality]) -> dict:
    """Every offending-row sample of `results`, by table and family (what `redacted` withholds)."""
    return {
        r.table: {name: family.sample for name, family in r.families.items() if family.sample}
        for r in results
        if any(family.sample for family in r.families.values())
    }
