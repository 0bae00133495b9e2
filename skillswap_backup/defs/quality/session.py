"""`SnapshotChecks`: the backup run's data-quality validation process, as a Dagster resource.

One `lib.quality.worker.Session` per snapshot partition of the run. A run that checks tables
starts its process when the run starts, so Great Expectations imports while Dagster and the first
tables take their time; the first table written names the snapshot, every table asset hands it
its table, and the check step finishes it (see `wiring`). A run that fails before its check step
kills the process at the end of the run; nothing is published then.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import PrivateAttr

from ...lib.catalog import Catalog, Table
from ...lib.quality import worker
from ...lib.quality.worker import Outcome, Session
from .checks import ChecksUnavailable

CHECKS_KEY = "snapshot_checks"


class SnapshotChecks(dg.ConfigurableResource):
    """The run's validation process per snapshot partition (see the module docstring)."""

    _sessions: dict = PrivateAttr(default_factory=dict)
    _spare: Session | None = PrivateAttr(default=None)  # started with the run, not opened yet
    _finishing: list = PrivateAttr(default_factory=list)  # results taken, reports being published

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator["SnapshotChecks"]:
        selection = context.run.asset_check_selection if context.run else None
        early = worker.take_early()  # started by the CLI before it imported Dagster
        if selection is None or selection:
            self._spare = early or Session()
        elif early is not None:
            early.close()
        try:
            yield self
        finally:
            # Finished sessions have ended already; others belonged to a failed run.
            for session in [*self._sessions.values(), *self._finishing, *([self._spare] if self._spare else [])]:
                session.close()

    def session(self, storage, partition_key: str, catalog: Catalog) -> Session:
        """The partition's session, started on first use. Raises ChecksUnavailable when the run
        cannot read the snapshot."""
        if partition_key not in self._sessions:
            store = storage.store(partition_key)
            keys = store.encryption
            if store.encrypted and not (keys.identities or keys.passphrase):
                if self._spare is not None:  # it would never be opened
                    self._spare.close()
                    self._spare = None
                raise ChecksUnavailable(
                    "the snapshot is encrypted and this run has no key to read it "
                    "(set BACKUP_AGE_IDENTITY; `verify` can check the snapshot later)"
                )
            session, self._spare = self._spare or Session(), None
            self._sessions[partition_key] = session.open(
                root=storage.root, partition_key=partition_key, catalog=catalog, order=[t.qualified for t in catalog.tables]
            )
        return self._sessions[partition_key]

    def finish(self, storage, partition_key: str, catalog: Catalog, tables: list[str], log) -> Outcome:
        """Finish the partition's session (starting one if no table was written in this run):
        the results now, the published reports when `Outcome.published` is called."""
        session = self.session(storage, partition_key, catalog)
        del self._sessions[partition_key]  # a retried check step starts afresh
        self._finishing.append(session)
        outcome = session.finish(tables, log)

        def published() -> dict:
            try:
                return outcome.published()
            finally:
                session.close()

        return Outcome(outcome.results, published)

    def table_written(self, context: dg.AssetExecutionContext, storage, catalog: Catalog, table: Table) -> None:
        """Hand a written table to the session, when this run checks it at all."""
        selection = context.run.asset_check_selection
        if selection is not None and not any(key.asset_key == context.asset_key for key in selection):
            return
        try:
            self.session(storage, context.partition_key, catalog).written(table.qualified)
        except ChecksUnavailable:
            pass  # the check step says so, once
