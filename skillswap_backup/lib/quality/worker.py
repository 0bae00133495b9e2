"""Validate a snapshot's tables and publish its reports in a process of its own.

Great Expectations costs ~260 MB of RSS just to import (scipy, altair, sqlalchemy, …) and its
pandas frames add the biggest table's key columns. Inside the backup run's process, next to
Dagster and the backup's own buffers, that peaked at ~650 MB on the 2M-row bench database. Here
the run's process never imports GX; this one imports it once, then validates each table in a
forked child that shares those pages and exits after the table, so what a table's validation
leaves behind (freed but not returned heap, GX's caches) never adds up: 449 -> 341 MB on the
4M-row bench database.

The worker reads one JSON request on stdin and answers one JSON document on stdout; its progress
lines go to stderr and are relayed to the caller's log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from ..catalog import Catalog
from .results import TableQuality


class WorkerFailed(Exception):
    """The validation process itself failed (not a check): one line, with its last words."""


@dataclass
class Outcome:
    results: list[TableQuality]
    # quality_json / data_docs / restorable, or report_error when the reports could not be stored
    published: dict


def validate_in_child(
    *, root: str, partition_key: str, catalog: Catalog, tables: list[str], order: list[str], log: Callable[[str], None]
) -> Outcome:
    """Validate `tables` of snapshot `partition_key` under `root` in a child process, merge the
    results into the snapshot's reports/ (quality.json, Data Docs, the manifest's verdict)."""
    request = {"root": root, "partition_key": partition_key, "catalog": json.loads(catalog.to_json()), "tables": tables, "order": order}
    child = subprocess.run(
        [sys.executable, "-m", __name__], input=json.dumps(request), capture_output=True, text=True, check=False
    )
    lines = [line for line in child.stderr.splitlines() if line.strip()]
    for line in lines:
        log(line)
    if child.returncode != 0:
        last = lines[-1] if lines else f"exit code {child.returncode}"
        raise WorkerFailed(f"the data-quality checks of snapshot {partition_key} could not run: {last}")
    body = json.loads(child.stdout)
    return Outcome([TableQuality.from_dict(r) for r in body["results"]], body["published"])


def _run(request: dict, log: Callable[[str], None]) -> dict:
    from ..manifest import meta_path, record_quality
    from ..storage import SnapshotStore
    from . import redact
    from .publish import QUALITY_JSON, publish_reports
    from .readers import StoreReader
    from .suites import QualityValidator, warm_up

    catalog = Catalog.from_dict(request["catalog"])
    store = SnapshotStore(request["root"], request["partition_key"])

    def source_rows(table) -> int:
        return int(store.read_json(meta_path(table))["source_rows"])

    reader = StoreReader(store, source_rows)
    validator = QualityValidator(catalog)
    warm_up()
    results = []
    for name in request["tables"]:
        result = _validate_forked(validator, catalog.table(name), reader)
        log(f"{name}: " + ("passed" if result.passed else f"failed: {', '.join(result.failed_families()) or result.error}"))
        results.append(result)
    if store.encrypted:
        # Offending values stay inside age: the plaintext reports name rows by their integer keys.
        store.write_json(redact.SAMPLES, {"partition_key": store.partition_key, "samples": redact.samples(results)})
        results = [redact.redacted(r, catalog.table(r.table).primary_key) for r in results]
    try:
        published = publish_reports(store, results, partition_key=store.partition_key, order=request["order"])
        # Checks may finish after the manifest: the verdict goes into it either way.
        record_quality(store, store.read_json(QUALITY_JSON))
    except Exception as error:  # noqa: BLE001 - the verdicts matter more than their report
        published = {"report_error": f"{type(error).__name__}: {error}"}
    return {"results": [r.to_dict() for r in results], "published": published}


def _validate_forked(validator, table, reader) -> TableQuality:
    """`validator.validate_table` in a forked child; its result comes back through a pipe."""
    from .suites import failed_result

    readable, writable = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: validate, answer, leave without running the parent's cleanups
        os.close(readable)
        code = 0
        try:
            answer = validator.validate_table(table, reader).to_dict()
        except BaseException as error:  # noqa: BLE001 - reported by the parent as a failed table
            answer, code = {"error": f"{type(error).__name__}: {error}"}, 1
        with os.fdopen(writable, "wb") as pipe:
            pipe.write(json.dumps(answer).encode())
        os._exit(code)
    os.close(writable)
    with os.fdopen(readable, "rb") as pipe:
        body = pipe.read()
    _, status = os.waitpid(pid, 0)
    answer = json.loads(body) if body else {"error": f"the validating process ended with status {status}"}
    if "table" not in answer:
        return failed_result(validator.catalog, table, answer["error"])
    return TableQuality.from_dict(answer)


def main() -> None:
    request = json.loads(sys.stdin.read())
    answer = _run(request, lambda line: print(line, file=sys.stderr, flush=True))
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
