"""Plain, JSON-friendly results of validating one snapshot (or database), and their text summary.

A `TableQuality` holds one `FamilyResult` per check family plus the Great Expectations
validation result as a JSON dict (to rebuild Data Docs later, in another process, without
re-reading data). Samples of offending rows are capped, so results stay small at any scale.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .plan import BLOCKING_FAMILIES, FAMILIES

SAMPLE_LIMIT = 20


def plain(value: Any) -> Any:
    """A JSON-safe Python value (numpy scalars, NA, dates, bytes, Decimals made plain)."""
    if value is None or type(value) in (bool, str):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return None if math.isnan(value) else float(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return plain(item())
        except (TypeError, ValueError):
            pass
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
        if isinstance(value, pd.Timestamp):
            return value.isoformat()
    except ImportError:
        pass
    return str(value)


@dataclass
class RuleOutcome:
    """One expectation: what it states, and what the data showed."""

    description: str
    expectation: str
    passed: bool
    unexpected_count: int = 0
    observed: Any = None
    sample: list[dict] = field(default_factory=list)
    error: str = ""


@dataclass
class FamilyResult:
    family: str
    passed: bool
    expected: str
    observed: str
    unexpected_count: int = 0
    sample: list[dict] = field(default_factory=list)  # offending keys, at most SAMPLE_LIMIT
    rules: list[RuleOutcome] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        return self.family in BLOCKING_FAMILIES


@dataclass
class TableQuality:
    table: str  # qualified name
    asset_path: list[str]
    rows: int | None
    source_rows: int | None
    families: dict[str, FamilyResult] = field(default_factory=dict)
    error: str = ""  # the table could not be validated at all (e.g. its files are missing)
    gx_result: dict | None = None  # ExpectationSuiteValidationResult.to_json_dict()

    @property
    def passed(self) -> bool:
        return not self.error and all(f.passed for f in self.families.values())

    def failed_families(self) -> list[str]:
        return [name for name, f in self.families.items() if not f.passed]

    def blocking_failures(self) -> list[str]:
        return [name for name in self.failed_families() if name in BLOCKING_FAMILIES]

    def to_dict(self) -> dict:
        return plain(asdict(self))

    @classmethod
    def from_dict(cls, data: dict) -> TableQuality:
        families = {
            name: FamilyResult(**{**f, "rules": [RuleOutcome(**r) for r in f.get("rules", [])]})
            for name, f in data.get("families", {}).items()
        }
        return cls(**{**data, "families": families})


def results_to_json(results: list[TableQuality]) -> str:
    return json.dumps([r.to_dict() for r in results], indent=2)


def results_from_json(text: str) -> list[TableQuality]:
    return [TableQuality.from_dict(d) for d in json.loads(text)]


def restorable(results: list[TableQuality]) -> bool:
    """False when any blocking family failed (or a table could not be validated)."""
    return not any(r.error or r.blocking_failures() for r in results)


def _sample_text(sample: list[dict], limit: int = 3) -> str:
    shown = "; ".join(json.dumps(s, default=str, separators=(", ", ": ")) for s in sample[:limit])
    more = f" (+{len(sample) - limit} more in the report)" if len(sample) > limit else ""
    return f"{shown}{more}"


def text_summary(results: list[TableQuality]) -> str:
    """Per table: checks passed/failed and row counts; failures with their offending keys."""
    checks = [f for r in results for f in r.families.values()]
    failed = [f for f in checks if not f.passed]
    blocking = [f for f in failed if f.blocking]
    errors = [r for r in results if r.error]
    head = (
        f"Data quality: {len(results)} tables, {len(checks)} checks, {len(checks) - len(failed)} passed, "
        f"{len(failed)} failed ({len(blocking)} blocking)"
        + (f", {len(errors)} tables not validated" if errors else "")
    )
    lines = [head]
    width = max((len(r.table) for r in results), default=10)
    for r in results:
        counts = f"{r.rows if r.rows is not None else '?'} rows (source {r.source_rows if r.source_rows is not None else '?'})"
        total = len(r.families)
        ok = total - len(r.failed_families())
        status = "ERROR" if r.error else ("ok" if r.passed else "FAILED")
        lines.append(f"  {r.table:<{width}}  {status:<6}  {ok}/{total} checks passed  {counts}")
        if r.error:
            lines.append(f"      error: {r.error}")
        for name in FAMILIES:
            family = r.families.get(name)
            if family is None or family.passed:
                continue
            tag = "blocking" if family.blocking else "warning"
            lines.append(f"      {name} FAILED ({tag}): expected {family.expected}; observed {family.observed}")
            if family.sample:
                lines.append(f"        offending keys: {_sample_text(family.sample)}")
        for family in r.families.values():
            for note in family.skipped:
                lines.append(f"      note: {note}")
    return "\n".join(lines)
