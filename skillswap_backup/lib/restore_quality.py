"""Data quality around a restore: the gate before it, the same suites on the target after it.

Before: a snapshot whose manifest says `quality.restorable` is false (a row-count, primary-key
or foreign-key check failed) is refused, naming the failed checks and tables, unless forced.
Only the restored tables count: `--tables skills` of a snapshot whose `messages` failed is fine.
A snapshot with no verdict yet ("unchecked") restores with a warning.

After: when every restored table's row count and content checksum, computed by PostgreSQL on the
target, equal the snapshot's, the target holds exactly the rows the snapshot's suites judged, and
PostgreSQL itself has validated every key, NOT NULL, CHECK and foreign key while building
post-data: the snapshot's results are the target's (`basis` "snapshot"), with no second pass over
the data. Otherwise — content differs, the snapshot has no results, or `--validate-target` — the
snapshot's Great Expectations suites validate the restored database itself (counts against the
manifest, keys, NOT NULL, CHECKs, foreign keys; `quality.validate_database`), and name the
offending rows. A failure the snapshot's own verdict already recorded (e.g. orphan rows behind a foreign key the source
declared NOT VALID, restored with `--force`) is *carried over*: listed, not fatal. Anything new
(more violations than the snapshot had, or a family the snapshot passed) fails the restore.

The restore's report goes into the snapshot folder, `reports/restore-<database>-<UTC time>/`
(quality.json + Data Docs): next to the verdict it is compared with, readable by `report`, on
whatever storage the snapshot lives on. It names the target database only (never its URL, user
or password). When the storage refuses the write (read-only credentials), it goes to a local
`.skillswap/reports/<snapshot>/` folder instead and the restore says where.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from .quality.plan import BLOCKING_FAMILIES, FAMILIES
from .quality.publish import QUALITY_JSON, REPORTS
from .quality.results import TableQuality, text_summary

RESTORE_REPORT_PREFIX = "restore-"
_STATIC_LINK = re.compile(r'(href|src)="((?:\.\./)*)(?:\./)?static/')
LOCAL_REPORTS = Path(".skillswap") / "reports"


class SnapshotNotRestorable(Exception):
    """One line: the snapshot failed blocking data-quality checks; what they were; --force."""


@dataclass
class QualityGate:
    """What the snapshot's data-quality verdict says about the tables being restored."""

    partition_key: str
    status: str  # passed | warnings | failed | unchecked (as the manifest says)
    restorable: bool | None
    forced: bool = False
    failed: dict[str, list[str]] = field(default_factory=dict)  # restored tables -> failed families
    # restored table -> family -> violating rows the snapshot had (None: count not known)
    known: dict[str, dict[str, int | None]] = field(default_factory=dict)
    observed: dict[str, dict[str, str]] = field(default_factory=dict)  # same keys: what the check saw
    elsewhere: dict[str, list[str]] = field(default_factory=dict)  # blocking failures in tables left out

    def blocking(self) -> dict[str, list[str]]:
        found = {t: [f for f in fams if f in BLOCKING_FAMILIES] for t, fams in self.failed.items()}
        return {t: fams for t, fams in found.items() if fams}

    def failures_text(self, failures: dict[str, list[str]], *, detail: bool = True) -> str:
        parts = []
        for table, families in failures.items():
            for family in families:
                seen = self.observed.get(table, {}).get(family) if detail else None
                parts.append(f"{table} {family}" + (f" ({seen})" if seen else ""))
        text = "; ".join(parts)
        return text if len(text) <= 600 else text[:597] + "…"

    def lines(self) -> list[str]:
        """What a person should know before the data moves (empty for a clean snapshot)."""
        key = self.partition_key
        out = []
        if self.status == "unchecked":
            out.append(
                f"warning: snapshot {key} has no data-quality verdict yet (its checks have not run); restoring it "
                f"unchecked — `skillswap-backup backup --partition {key}` runs them"
            )
        blocking = self.blocking()
        if blocking and self.forced:
            out.append(
                f"--force: restoring snapshot {key} although it is NOT RESTORABLE "
                f"({self.failures_text(blocking)}); the violations are carried over and listed in the report"
            )
        warnings = {t: [f for f in fams if f not in BLOCKING_FAMILIES] for t, fams in self.failed.items()}
        warnings = {t: fams for t, fams in warnings.items() if fams}
        if warnings:
            out.append(
                f"warning: snapshot {key} failed non-blocking checks ({self.failures_text(warnings)}); "
                "these rows are restored as they are and listed in the report"
            )
        if self.elsewhere:
            out.append(
                f"note: snapshot {key} failed blocking checks only in tables this restore leaves out "
                f"({self.failures_text(self.elsewhere, detail=False)})"
            )
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> QualityGate | None:
        return cls(**data) if data else None


def _stored_report(store) -> dict:
    """The snapshot's reports/quality.json (per-family counts and observations), or {}."""
    try:
        return store.read_json(QUALITY_JSON) if store is not None and store.exists(QUALITY_JSON) else {}
    except (OSError, ValueError):
        return {}


def gate(manifest: dict, tables: list[str], *, force: bool = False, store=None) -> QualityGate:
    """The verdict for restoring `tables` of this snapshot; SnapshotNotRestorable when blocking
    checks failed in any of them and `force` is off."""
    key = manifest["partition_key"]
    quality = manifest.get("quality") or {}
    restored = set(tables)
    failed_all = quality.get("failed") or {}
    result = QualityGate(
        partition_key=key,
        status=quality.get("status", "unchecked"),
        restorable=quality.get("restorable"),
        forced=force,
        failed={t: list(f) for t, f in failed_all.items() if t in restored},
        elsewhere={
            t: [f for f in fams if f in BLOCKING_FAMILIES]
            for t, fams in failed_all.items()
            if t not in restored and any(f in BLOCKING_FAMILIES for f in fams)
        },
    )
    stored = {t["table"]: t for t in _stored_report(store).get("tables", [])}
    for table, families in result.failed.items():
        details = stored.get(table, {}).get("families", {})
        result.known[table] = {f: details.get(f, {}).get("unexpected_count") if f in details else None for f in families}
        result.observed[table] = {f: details[f]["observed"] for f in families if details.get(f, {}).get("observed")}
    blocking = result.blocking()
    if blocking and not force:
        raise SnapshotNotRestorable(
            f"snapshot {key} is NOT RESTORABLE: blocking data-quality checks failed: {result.failures_text(blocking)}; "
            f"see `skillswap-backup report {key}`, restore another snapshot, or pass --force to restore it anyway "
            "(the report then lists the violations it carries over)"
        )
    return result


# ---- after the restore ---------------------------------------------------------------------------


@dataclass
class RestoreQuality:
    """The suites' verdict on the restored database, set against the snapshot's own verdict."""

    status: str  # passed | carried_over | failed
    tables: int
    checks: int
    passed: int
    carried_over: list[str] = field(default_factory=list)  # violations the snapshot already had
    problems: list[str] = field(default_factory=list)  # new ones: they fail the restore
    summary: str = ""  # text_summary of the results
    report: str = ""  # where the report was written ("" when not written)
    basis: str = "target"  # target: the suites ran on the database; snapshot: its proven-identical snapshot's results

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        head = f"data quality of the restored database: {self.passed}/{self.checks} checks passed on {self.tables} tables"
        out = [head + {"passed": "", "carried_over": " (the rest carried over from the snapshot)", "failed": " — FAILED"}[self.status]]
        if self.basis == "snapshot":
            out.append("  (content identical to the snapshot by checksum, constraints validated by PostgreSQL: "
                       "the snapshot's suite results apply; --validate-target runs them on the database)")
        out += [f"  carried over from the snapshot: {c}" for c in self.carried_over]
        out += [f"  NEW in the restored database: {p}" for p in self.problems]
        if self.report:
            out.append(f"  restore quality report: {self.report}")
        return out

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def _violation(result: TableQuality, family: str) -> str:
    found = result.families[family]
    keys = f"; offending keys: {json.dumps(found.sample[:3], default=str)}" if found.sample else ""
    return f"{result.table} {family}: {found.observed}{keys}"


def judge(results: list[TableQuality], known: dict[str, dict[str, int | None]]) -> RestoreQuality:
    """Split the target's failures into carried over (the snapshot had at least as many) and new."""
    carried, problems = [], []
    for result in results:
        if result.error:
            problems.append(f"{result.table}: not validated: {result.error}")
            continue
        for family in FAMILIES:
            found = result.families.get(family)
            if found is None or found.passed:
                continue
            had = known.get(result.table, {})
            if family in had and (had[family] is None or found.unexpected_count <= had[family]):
                carried.append(_violation(result, family))
            else:
                problems.append(_violation(result, family))
    checks = sum(len(r.families) for r in results)
    passed = sum(1 for r in results for f in r.families.values() if f.passed)
    return RestoreQuality(
        status="failed" if problems else "carried_over" if carried else "passed",
        tables=len(results),
        checks=checks,
        passed=passed,
        carried_over=carried,
        problems=problems,
        summary=text_summary(results),
    )


def validate_target(manifest: dict, target_url: str, tables: list[str], known: dict | None = None) -> tuple[RestoreQuality, list[TableQuality]]:
    """Run the snapshot's suites on the restored tables of the target database."""
    from .catalog import Catalog
    from .quality import validate_database

    catalog = Catalog.from_dict(manifest["catalog"])
    expected = {name: manifest["tables"][name]["source_rows"] for name in tables}
    results = validate_database(catalog, target_url, expected_rows=expected, tables=tables)
    return judge(results, known or {}), results


def snapshot_results(store, manifest: dict, tables: list[str]) -> list[TableQuality] | None:
    """The snapshot's own suite results for `tables` (from reports/quality.json), or None when
    it has none that provably judged these files: its manifest carries no verdict (checks not run
    since the partition was last written; an older run's quality.json may linger), a table was
    not validated, or a result counted other rows than the manifest records."""
    if (manifest.get("quality") or {}).get("status", "unchecked") == "unchecked":
        return None
    stored = {t["table"]: t for t in _stored_report(store).get("tables", [])}
    for name in tables:
        found, recorded = stored.get(name), manifest["tables"][name]
        if not found or found.get("error") or (found.get("rows"), found.get("source_rows")) != (recorded["rows"], recorded["source_rows"]):
            return None
    return [TableQuality.from_dict(stored[name]) for name in tables] if tables else None


def snapshot_verdict(results: list[TableQuality], known: dict[str, dict[str, int | None]]) -> RestoreQuality:
    """The target's verdict when its content is proven identical to the snapshot's."""
    verdict = judge(results, known)
    verdict.basis = "snapshot"
    return verdict


def _folder_name(database: str, when: datetime) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", database) or "target"
    return f"{RESTORE_REPORT_PREFIX}{safe}-{when.strftime('%Y%m%dT%H%M%SZ')}"


def write_report(store, verdict: RestoreQuality, results: list[TableQuality], *, database: str, log=print) -> str:
    """quality.json and Data Docs of a restore into the snapshot's reports/ (or a local folder
    when the storage refuses); returns where the Data Docs index is."""
    from .quality.docs import build_data_docs

    when = datetime.now(timezone.utc)
    folder = _folder_name(database, when)
    body = {
        "format": 1,
        "kind": "restore",
        "partition_key": store.partition_key,
        "target_database": database,
        "validated_at": when.isoformat(timespec="seconds"),
        **{k: v for k, v in verdict.to_dict().items() if k not in ("report", "summary")},
        "tables": [r.to_dict() for r in results],
    }
    with tempfile.TemporaryDirectory(prefix="skillswap-restore-docs-") as tmp:
        site = Path(tmp) / "site"
        if verdict.basis == "snapshot":
            site.mkdir()
            (site / "index.html").write_text(_carried_page(verdict, results, database, store.partition_key))
        else:
            build_data_docs(results, site, run_name="restore")
        (site / "quality.json").write_text(json.dumps(body, indent=2))
        # The pages take only a favicon from static/ (≈4 MB of fonts and images): point them at
        # the snapshot's own reports/static/ rather than storing a copy per restore.
        for page in site.rglob("*.html"):
            page.write_text(_STATIC_LINK.sub(r'\1="../\2static/', page.read_text()))
        files = sorted(p for p in site.rglob("*") if p.is_file() and "static" not in p.relative_to(site).parts[:1])
        relative = f"{REPORTS}/{folder}"
        try:
            for path in files:
                with store.writer(f"{relative}/{path.relative_to(site).as_posix()}", plaintext=True) as (handle, _):
                    handle.write(path.read_bytes())
            return store.url(f"{relative}/index.html")
        except OSError as error:
            local = (LOCAL_REPORTS / store.partition_key / folder).resolve()
            log(f"could not write the restore report into the snapshot ({error}); writing it to {local}")
            for path in files:
                out = local / path.relative_to(site)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(path.read_bytes())
            return str(local / "index.html")


def _carried_page(verdict: RestoreQuality, results: list[TableQuality], database: str, partition_key: str) -> str:
    """The restore's page when the snapshot's results apply: the verdict per table, and a link to
    the snapshot's own Data Docs (one folder up), which show every expectation."""
    rows = "\n".join(
        f"<tr><td>{escape(r.table)}</td><td>{r.rows}</td><td>{sum(f.passed for f in r.families.values())}/{len(r.families)}</td>"
        f"<td>{escape(', '.join(r.failed_families()) or 'none')}</td></tr>"
        for r in results
    )
    notes = "".join(f"<li>carried over from the snapshot: {escape(c)}</li>" for c in verdict.carried_over)
    notes += "".join(f"<li>NEW in the restored database: {escape(p)}</li>" for p in verdict.problems)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Restore of {escape(partition_key)} into {escape(database)}</title></head>
<body>
<h1>Restore of snapshot {escape(partition_key)} into {escape(database)}</h1>
<p>{verdict.passed}/{verdict.checks} checks passed on {verdict.tables} tables ({escape(verdict.status)}).
Every restored table's row count and content checksum, computed by PostgreSQL on {escape(database)}, equal the
snapshot's, and PostgreSQL validated its keys and constraints: the results of the snapshot's suites apply to it.
The expectations themselves are in the <a href="../index.html">snapshot's Data Docs</a>.</p>
<ul>{notes}</ul>
<table border="1" cellpadding="4">
<tr><th>table</th><th>rows</th><th>checks passed</th><th>failed families</th></tr>
{rows}
</table>
</body></html>
"""


def restore_reports(store) -> list[str]:
    """Data Docs of the restores of this snapshot recorded in its folder, oldest first."""
    found = {
        path.split("/")[1]
        for path in store.list_files()
        if path.startswith(f"{REPORTS}/{RESTORE_REPORT_PREFIX}") and path.count("/") >= 2
    }
    return [store.url(f"{REPORTS}/{name}/index.html") for name in sorted(found, key=lambda n: n.rsplit("-", 1)[-1])]
