"""Errors the CLI reports as one line (what failed, what to do) with a non-zero exit."""

from __future__ import annotations

from ..lib.backup import SchemaDrift, SnapshotLost
from ..lib.catalog import CatalogMissing
from ..lib.encryption import EncryptionError
from ..lib.integrity import DamagedFile
from ..lib.manifest import IncompleteSnapshot
from ..lib.pg import DatabaseError
from ..lib.sanitize import PolicyError
from ..lib.settings import SettingMissing
from ..lib.storage import StorageError


class CommandFailed(Exception):
    """A command's own failure, already phrased for people."""


KNOWN_ERRORS: tuple[type[Exception], ...] = (
    CommandFailed,
    DatabaseError,
    SettingMissing,
    CatalogMissing,
    StorageError,
    SchemaDrift,
    SnapshotLost,
    IncompleteSnapshot,
    EncryptionError,
    DamagedFile,
    PolicyError,
)


def register(error_type: type[Exception]) -> None:
    """Let a feature module add its own one-line error type."""
    global KNOWN_ERRORS
    if error_type not in KNOWN_ERRORS:
        KNOWN_ERRORS = (*KNOWN_ERRORS, error_type)
