"""Validate a snapshot's tables and publish its reports in a process of its own.

Great Expectations costs ~260 MB of RSS just to import (scipy, altair, sqlalchemy, …) and its
pandas frames add the biggest table's key columns. Inside the backup run's process, next to
Dagster and the backup's own buffers, that peaked at ~650 MB on the 2M-row bench database. Here
the run's process never imports GX; this one imports it once, then validates each table of
`IN_PROCESS_ROWS` rows or more in a forked child that shares those pages and exits after the
table, so what a big table's validation leaves behind (freed but not returned heap, GX's caches)
never adds up: 449 -> 341 MB on the 4M-row bench database. Smaller tables are validated here.

A `Session` is started as soon as a backup run writes its first table: the worker imports GX
while Dagster and the first tables take their time, then validates each table once it and its
foreign-key parents are written, beside the backup instead of after it. The check step only
finishes the session: it validates whatever is left and takes the results, reports them, then
waits for the reports to be published.

Protocol: JSON lines on stdin — the snapshot (root, partition key, catalog, table order), then
`{"written": table}` any number of times, then `{"finish": [tables]}` — and two JSON lines on
stdout: the results, then where the reports were published. The caller reports the results
while the reports (Data Docs: ~1 s for the 2M-row bench snapshot) are still being built.
Progress lines go to stderr and are relayed to the caller's log.
"""

from __future__ import annotations

import gc
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..catalog import Catalog
from .results import TableQuality


# Tables with fewer rows are validated in the worker itself: a forked child costs ~30 ms (the
# pages it touches are copied), as much again as validating a small table (63 vs 34 ms per
# 100-row table, measured), and what a small table's validation leaves behind is small.
IN_PROCESS_ROWS = 50_000


class WorkerFailed(Exception):
    """The validation process itself failed (not a check): one line, with its last words."""


@dataclass
class Outcome:
    results: list[TableQuality]
    # Waits for the reports: quality_json / data_docs / restorable, or report_error when they
    # could not be stored. Raises WorkerFailed if the process ended without saying.
    published: Callable[[], dict]


class Session:
    """The caller's side of one validation process. It starts importing GX at once; `open` names
    the snapshot it validates (snapshot `partition_key` under `root`)."""

    def __init__(self):
        self.partition_key: str | None = None
        self._child = subprocess.Popen(
            [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )
        self._stderr: list[str] = []
        # Drained all along: a worker blocked on a full stderr pipe would never finish.
        self._drain = threading.Thread(target=lambda: self._stderr.extend(self._child.stderr), daemon=True)
        self._drain.start()
        # Messages go out from a thread of their own: the worker reads them only between
        # validations (and not before GX is imported), and the catalog of a 100-table schema is
        # more than a pipe holds, so writing directly could stall a table step until then.
        self._outbox: queue.Queue[dict | None] = queue.Queue()
        self._sender = threading.Thread(target=self._send_all, daemon=True)
        self._sender.start()

    def open(self, *, root: str, partition_key: str, catalog: Catalog, order: list[str]) -> Session:
        self.partition_key = partition_key
        self._send({"root": root, "partition_key": partition_key, "catalog": json.loads(catalog.to_json()), "order": order})
        return self

    def _send(self, message: dict) -> None:
        self._outbox.put(message)

    def _send_all(self) -> None:
        """Write queued messages in order; None ends the input (stdin closes)."""
        while (message := self._outbox.get()) is not None:
            try:
                self._child.stdin.write(json.dumps(message) + "\n")
                self._child.stdin.flush()
            except OSError:
                pass  # the worker is gone: finish() reports how it ended
        try:
            self._child.stdin.close()
        except OSError:
            pass

    def written(self, table: str) -> None:
        """`table`'s files and meta record are complete: validate it once its parents are too."""
        self._send({"written": table})

    def finish(self, tables: list[str], log: Callable[[str], None]) -> Outcome:
        """Validate what is left of `tables` and take the results; the worker then merges them
        into the snapshot's reports/ (quality.json, Data Docs, the manifest's verdict), which
        `Outcome.published` waits for. Progress lines reach `log` then, as one message."""
        self._send({"finish": tables})
        self._outbox.put(None)
        body = self._child.stdout.readline()
        if not body:
            self._ended(log)
        answer = json.loads(body)
        return Outcome([TableQuality.from_dict(r) for r in answer["results"]], lambda: self._published(log))

    def _published(self, log: Callable[[str], None]) -> dict:
        body = self._child.stdout.readline()
        self._ended(log, answered=bool(body))
        return json.loads(body)["published"]

    def _ended(self, log: Callable[[str], None], *, answered: bool = False) -> None:
        """Wait for the process to end and relay its progress lines; raise unless it answered."""
        self._child.wait()
        self._drain.join()
        lines = [line.rstrip("\n") for line in self._stderr if line.strip()]
        if lines:
            # One message, not one per table: each is an event in Dagster's event log.
            log("\n".join(lines))
        if self._child.returncode != 0 or not answered:
            last = lines[-1] if lines else f"exit code {self._child.returncode}"
            raise WorkerFailed(f"the data-quality checks of snapshot {self.partition_key} could not run: {last}")

    def close(self) -> None:
        """End a session that was never finished (its run failed): nothing is published."""
        if self._child.poll() is None:
            self._child.kill()
            self._child.wait()
        self._outbox.put(None)
        self._sender.join()
        for pipe in (self._child.stdin, self._child.stdout):
            try:
                pipe.close()
            except OSError:
                pass


_early: Session | None = None


def start_early() -> None:
    """Start a session now, for a backup run this process is about to launch (`take_early`)."""
    global _early
    if _early is None:
        _early = Session()


def take_early() -> Session | None:
    """The session `start_early` started, once; None when there is none."""
    global _early
    session, _early = _early, None
    return session


class _Validation:
    """The worker's side: validates tables as they become ready, publishes at the end."""

    def __init__(self, request: dict, log: Callable[[str], None]):
        from ..manifest import meta_path
        from ..storage import SnapshotStore
        from .readers import StoreReader
        from .suites import QualityValidator

        self.catalog = Catalog.from_dict(request["catalog"])
        self.store = SnapshotStore(request["root"], request["partition_key"])
        self.order = request["order"]
        self.log = log
        store = self.store
        self.reader = StoreReader(store, lambda table: int(store.read_json(meta_path(table))["source_rows"]))
        self.validator = QualityValidator(self.catalog, release_memory=False)  # each table in a forked child
        self.written_tables: set[str] = set()
        self.results: dict[str, TableQuality] = {}
        known = self.catalog.by_qualified()
        self.parents = {
            name: {fk.ref_qualified for fk in table.foreign_keys if fk.ref_qualified in known and fk.ref_qualified != name}
            for name, table in known.items()
        }

    def written(self, name: str) -> None:
        """Foreign-key checks read the parents' keys: a table waits until its parents are written."""
        self.written_tables.add(name)
        for each in self.order:
            if each in self.written_tables and each not in self.results and self.parents[each] <= self.written_tables:
                self._validate(each)

    def _validate(self, name: str) -> None:
        table = self.catalog.table(name)
        validate = _validate_here if self._small(table) else _validate_forked
        result = validate(self.validator, table, self.reader)
        self.log(f"{name}: " + ("passed" if result.passed else f"failed: {', '.join(result.failed_families()) or result.error}"))
        self.results[name] = result

    def _small(self, table) -> bool:
        try:
            return self.reader.source_row_count(table) < IN_PROCESS_ROWS
        except Exception:  # noqa: BLE001 - no count recorded: the forked path reports why
            return False

    def finish(self, tables: list[str]) -> list[TableQuality]:
        """Validate what is left of `tables`; their results as the reports will show them."""
        from . import redact

        for name in tables:
            if name not in self.results:
                self._validate(name)
        results = [self.results[name] for name in tables]
        store = self.store
        if store.encrypted:
            # Offending values stay inside age: the plaintext reports name rows by their integer keys.
            store.write_json(redact.SAMPLES, {"partition_key": store.partition_key, "samples": redact.samples(results)})
            results = [redact.redacted(r, self.catalog.table(r.table).primary_key) for r in results]
        return results

    def publish(self, results: list[TableQuality]) -> dict:
        """Merge `results` into the snapshot's reports and record the verdict in its manifest."""
        from ..manifest import record_quality
        from .publish import QUALITY_JSON, publish_reports

        store = self.store
        try:
            published = publish_reports(store, results, partition_key=store.partition_key, order=self.order)
            # Checks may finish after the manifest: the verdict goes into it either way.
            record_quality(store, store.read_json(QUALITY_JSON))
        except Exception as error:  # noqa: BLE001 - the verdicts matter more than their report
            published = {"report_error": f"{type(error).__name__}: {error}"}
        return published


def _validate_here(validator, table, reader) -> TableQuality:
    """`validator.validate_table`, a failure reported as a failed table."""
    from .suites import failed_result

    try:
        return validator.validate_table(table, reader)
    except Exception as error:  # noqa: BLE001 - reported as a failed table
        return failed_result(validator.catalog, table, f"{type(error).__name__}: {error}")


def _validate_forked(validator, table, reader) -> TableQuality:
    """`validator.validate_table` in a forked child; its result comes back through a pipe."""
    from .suites import failed_result

    readable, writable = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: validate, answer, leave without running the parent's cleanups
        os.close(readable)
        try:
            answer = _validate_here(validator, table, reader).to_dict()
            with os.fdopen(writable, "wb") as pipe:
                pipe.write(json.dumps(answer).encode())
        finally:
            os._exit(0)  # whatever happened, the child never goes on with the parent's code
    os.close(writable)
    with os.fdopen(readable, "rb") as pipe:
        body = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not body:  # the child died before answering (killed, out of memory)
        return failed_result(validator.catalog, table, f"the validating process ended with status {status}")
    return TableQuality.from_dict(json.loads(body))


def main() -> None:
    from . import lean_import

    lean_import.install()
    from .suites import warm_up

    # stdout carries the answer alone: whatever a library prints goes to the progress lines.
    answer, sys.stdout = sys.stdout, sys.stderr
    warm_up()  # before the snapshot is named: a session may be started ahead of its first table
    # What GX has loaded stays out of every forked child's garbage collections: less time, and
    # fewer of the parent's pages copied into the child.
    gc.freeze()
    setup = sys.stdin.readline()
    if not setup:
        return  # never opened: its run had no table to check
    validation = _Validation(json.loads(setup), lambda line: print(line, file=sys.stderr, flush=True))
    for line in sys.stdin:
        message = json.loads(line)
        if "written" in message:
            validation.written(message["written"])
        elif "finish" in message:
            results = validation.finish(message["finish"])
            print(json.dumps({"results": [r.to_dict() for r in results]}), file=answer, flush=True)
            print(json.dumps({"published": validation.publish(results)}), file=answer, flush=True)
            # The caller waits for this process to end; tearing down GX's interpreter state takes ~0.5 s.
            os._exit(0)
    # stdin closed without "finish": the run that started this session failed; publish nothing.


if __name__ == "__main__":
    main()
