"""Keep a snapshot's quality results and Data Docs in its folder, under `reports/`.

`reports/quality.json` holds every table's latest `TableQuality` (checks of a few tables, e.g.
re-run from the UI, replace only those tables' entries) and the snapshot's verdict: restorable
or not. The Data Docs HTML is rebuilt from it each time, so the site always names every table.
Reports are written in plaintext (like the manifest) so people can open them.

`store` is a `storage.SnapshotStore`, or anything with `writer`, `read_json`, `exists`, `url`.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path

from .results import TableQuality, restorable

REPORTS = "reports"
QUALITY_JSON = f"{REPORTS}/quality.json"
DATA_DOCS_INDEX = f"{REPORTS}/index.html"
FORMAT = 1


def load_results(store) -> list[TableQuality]:
    """The results stored with a snapshot; [] when it has none yet."""
    if not store.exists(QUALITY_JSON):
        return []
    body = store.read_json(QUALITY_JSON)
    return [TableQuality.from_dict(t) for t in body.get("tables", [])]


def merge(previous: list[TableQuality], new: list[TableQuality], order: list[str]) -> list[TableQuality]:
    """`new` over `previous` (a partial re-run keeps the other tables' results), in catalog `order`.

    Results of tables no longer in the catalog are dropped: a re-run after `discover` must not
    keep reporting (or failing on) a table the snapshot no longer holds.
    """
    rank = {name: i for i, name in enumerate(order)}
    by_table = {r.table: r for r in previous if r.table in rank}
    by_table.update({r.table: r for r in new})
    return sorted(by_table.values(), key=lambda r: (rank.get(r.table, len(rank)), r.table))


def publish_reports(store, results: list[TableQuality], *, partition_key: str, order: list[str]) -> dict:
    """Merge `results` into the snapshot's quality.json, rebuild Data Docs; return where they are."""
    from .docs import build_data_docs

    merged = merge(load_results(store), results, order)
    body = {
        "format": FORMAT,
        "partition_key": partition_key,
        "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "restorable": restorable(merged),
        "failed": {r.table: r.failed_families() for r in merged if r.failed_families()},
        "tables": [r.to_dict() for r in merged],
    }
    store.write_json(QUALITY_JSON, body, plaintext=True)
    with tempfile.TemporaryDirectory(prefix="skillswap-docs-") as tmp:
        site = Path(tmp) / "site"
        build_data_docs(merged, site, run_name=partition_key)
        # Pages of earlier builds would linger under new run times; the static assets never change.
        for stale in ("validations", "expectations"):
            store.remove(f"{REPORTS}/{stale}")
        for path in sorted(p for p in site.rglob("*") if p.is_file()):
            relative = path.relative_to(site).as_posix()
            if relative.startswith("static/") and store.exists(f"{REPORTS}/{relative}"):
                continue
            with store.writer(f"{REPORTS}/{relative}", plaintext=True) as (handle, _):
                handle.write(path.read_bytes())
    return {
        "quality_json": store.url(QUALITY_JSON),
        "data_docs": store.url(DATA_DOCS_INDEX),
        "restorable": body["restorable"],
    }
