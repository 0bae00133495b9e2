"""Which errors the backup retries and which fail at once, classified on real PostgreSQL errors."""

from __future__ import annotations

import dagster as dg
import psycopg
import pytest

from skillswap_backup.defs import retries
from skillswap_backup.lib import pg
from skillswap_backup.lib.backup import SchemaDrift, SnapshotLost
from skillswap_backup.lib.storage import StorageError
from skillswap_backup_tests.pgtools import admin_url, scratch_database


def _error_of(url: str, statement: str) -> psycopg.Error:
    with psycopg.connect(url) as conn:
        with pytest.raises(psycopg.Error) as caught:
            conn.execute(statement)
    return caught.value


def test_missing_table_and_bad_sql_are_permanent():
    with scratch_database("ssb_test_lc_retries") as url:
        assert retries.is_permanent(_error_of(url, "SELECT * FROM no_such_table"))  # 42P01
        assert retries.is_permanent(_error_of(url, "SELECT 1/0"))  # 22012


def test_unreachable_server_is_transient_and_wrong_database_is_permanent():
    with pytest.raises(pg.DatabaseError) as unreachable:
        pg.open_connection("postgresql://postgres@127.0.0.1:1/postgres")
    assert not retries.is_permanent(unreachable.value)
    with pytest.raises(pg.DatabaseError) as missing:
        pg.open_connection(admin_url().rsplit("/", 1)[0] + "/ssb_no_such_database_x")
    assert retries.is_permanent(missing.value)


def test_a_dropped_connection_is_transient():
    with psycopg.connect(admin_url(), autocommit=True) as victim, psycopg.connect(admin_url(), autocommit=True) as killer:
        killer.execute("SELECT pg_terminate_backend(%s)", (victim.info.backend_pid,))
        with pytest.raises(psycopg.OperationalError) as caught:
            victim.execute("SELECT 1")
    assert not retries.is_permanent(caught.value)


def test_project_errors():
    assert retries.is_permanent(SchemaDrift("schema drift in public.users"))
    assert retries.is_permanent(SnapshotLost("lost"))
    assert retries.is_permanent(StorageError("cannot write to BACKUP_ROOT /x: Permission denied", permanent=True))
    assert not retries.is_permanent(StorageError("cannot reach the object store of BACKUP_ROOT s3://b/x"))
    assert not retries.is_permanent(TimeoutError("read timed out"))


def test_fail_fast_turns_permanent_errors_into_non_retryable_failures():
    with pytest.raises(dg.Failure) as caught, retries.fail_fast("table public.users"):
        raise SchemaDrift("schema drift in public.users since discovery (added: nickname)")
    assert caught.value.allow_retries is False
    assert caught.value.description.startswith("schema drift in public.users")
    with pytest.raises(ConnectionResetError), retries.fail_fast("table public.users"):
        raise ConnectionResetError("reset by peer")


def test_fail_fast_names_refused_object_store_credentials_without_retries():
    """s3fs raises PermissionError with the S3 client's error as its cause, as here."""
    from botocore.exceptions import ClientError, EndpointConnectionError

    refused = ClientError({"Error": {"Code": "SignatureDoesNotMatch", "Message": "The signature does not match"}}, "PutObject")
    with pytest.raises(dg.Failure) as caught, retries.fail_fast("table public.users"):
        raise PermissionError("The signature does not match") from refused
    assert caught.value.allow_retries is False
    assert caught.value.description.startswith("table public.users: the object store refused access to BACKUP_ROOT")
    with pytest.raises(EndpointConnectionError), retries.fail_fast("table public.users"):
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1/b")  # transient: the policy retries it
