"""Retries: transient errors are retried with backoff; permanent ones fail the step at once.

A RetryPolicy retries every exception by default. Retrying a wrong password, a revoked GRANT, a
dropped table, schema drift or refused object-store credentials only delays the real message
(and, inside the run's snapshot transaction, replaces it with "current transaction is aborted").
`fail_fast` turns those into `dg.Failure(allow_retries=False)` with the original one-line message;
everything else (a dropped connection, a timeout, a storage hiccup) keeps the policy's retries.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from typing import Iterator

import dagster as dg
import psycopg

from ..lib import storage
from ..lib.backup import SchemaDrift, SnapshotLost
from ..lib.pg import DatabaseError
from ..lib.table_reader import SnapshotReader, TableReadError

RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)

# SQLSTATE classes that no retry can fix: privileges (42501), undefined objects (42P01, 42703),
# invalid authorization (28xxx), invalid catalog name (3D000), data exceptions in the table (22xxx).
_PERMANENT_SQLSTATE_PREFIXES = ("28", "3D", "42", "22")
_PERMANENT_DUMP_WORDS = ("permission denied", "password authentication failed", "does not exist", "server version mismatch")
_PERMANENT_CONNECT_HINTS = ("check the user and password", "check the database name", "not a valid PostgreSQL")


def is_permanent(error: BaseException) -> bool:
    """True when retrying cannot succeed without someone changing something first."""
    if isinstance(error, (SchemaDrift, SnapshotLost)):
        return True  # a lost snapshot needs a whole new run, not a step retry
    if isinstance(error, DatabaseError):
        return any(hint in str(error) for hint in _PERMANENT_CONNECT_HINTS)
    if isinstance(error, storage.StorageError):
        return error.permanent
    if isinstance(error, (psycopg.Error, TableReadError)):
        state = error.sqlstate or ""
        return state.startswith(_PERMANENT_SQLSTATE_PREFIXES)
    if type(error).__name__ == "EncryptionError":
        return True
    if type(error).__name__ == "DumpError":  # pg_dump's own words, as it printed them
        return any(words in str(error) for words in _PERMANENT_DUMP_WORDS)
    return False


_ROW_SECURITY_HINT = (
    "; back up as a role that bypasses row-level security (BYPASSRLS, a superuser, or the table's owner "
    "when the table does not FORCE ROW LEVEL SECURITY), as pg_dump needs too"
)


def describe(error: BaseException) -> str:
    if isinstance(error, psycopg.Error) and error.diag.message_primary:
        message = error.diag.message_primary
    else:
        text = str(error).strip()
        message = text.splitlines()[0] if text else type(error).__name__
    if "would be affected by row-level security policy" in message:
        message += _ROW_SECURITY_HINT
    return message


@contextmanager
def fail_fast(what: str) -> Iterator[None]:
    """Re-raise permanent errors as non-retryable Failures that name `what`."""
    try:
        yield
    except dg.Failure:
        raise
    except Exception as error:
        error = storage.explain(error) or error
        if is_permanent(error):
            message = describe(error)
            if what.rsplit(" ", 1)[-1] not in message:  # name the table unless the message already does
                message = f"{what}: {message}"
            raise dg.Failure(description=message, allow_retries=False) from error
        raise


@contextmanager
def savepoint(*connections: psycopg.Connection | SnapshotReader) -> Iterator[None]:
    """A savepoint on each snapshot connection: one table failing (say, no SELECT privilege) must not
    abort the run's snapshot transaction for the tables after it."""
    with ExitStack() as stack:
        for conn in connections:
            stack.enter_context(conn.transaction())
        yield
