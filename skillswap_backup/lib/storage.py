"""Snapshot folders on any fsspec filesystem, written atomically and hashed as they are written.

A snapshot is `{root}/{partition_key}/`. Every file is written through `SnapshotStore.writer`,
which (1) encrypts when encryption is configured, (2) counts bytes and sha256 of what is stored,
and (3) makes the file appear only when complete: locally by writing a hidden temporary name and
renaming it; on object stores by the upload itself, which becomes visible only when finished.
A folder is a complete snapshot only once `manifest.json` exists; it is written last.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO, Iterator

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from .catalog import Table

MANIFEST = "manifest.json"
ENCRYPTED_SUFFIX = ".age"


class StorageError(Exception):
    """One clear line about a storage problem; `permanent` when no retry can fix it."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


# S3 error codes that mean the credentials or the bucket's policy refuse us: a retry cannot help.
_REFUSED_CODES = {
    "AccessDenied", "AllAccessDisabled", "ExpiredToken", "Forbidden", "InvalidAccessKeyId",
    "InvalidToken", "SignatureDoesNotMatch", "RequestTimeTooSkewed", "403",
}


def explain(error: BaseException, root: str | None = None, setting: str = "BACKUP_ROOT") -> StorageError | None:
    """`error` as one line about the storage named by `setting` (BACKUP_ROOT, or BACKUP_COPIES for a
    copy's destination; `root`, its value, when given) when it came from an object store
    (unreachable, no or refused credentials, no such bucket), else None. S3 error messages never
    carry the secret key."""
    botocore = sys.modules.get("botocore.exceptions")
    if botocore is None:  # no object store was ever touched in this process
        return None
    cause = error.__cause__ if isinstance(error.__cause__, botocore.ClientError) else error
    where = f"{setting} {root}" if root else setting
    if isinstance(cause, (botocore.NoCredentialsError, botocore.PartialCredentialsError)):
        return StorageError(
            f"no object-store credentials for {where} ({cause}); set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)",
            permanent=True,
        )
    if isinstance(cause, (botocore.EndpointConnectionError, botocore.ConnectTimeoutError, botocore.ReadTimeoutError)):
        return StorageError(f"cannot reach the object store of {where} ({cause}); check AWS_ENDPOINT_URL and the network")
    if isinstance(cause, botocore.ClientError):
        details = cause.response.get("Error", {})
        code = str(details.get("Code", ""))
        message = details.get("Message") or code
        if code in _REFUSED_CODES:
            return StorageError(
                f"the object store refused access to {where} ({message}); check AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY and the bucket's permissions",
                permanent=True,
            )
        if code == "NoSuchBucket":
            return StorageError(f"the bucket of {where} does not exist; create it or fix {setting}", permanent=True)
        return StorageError(f"the object store failed on {where}: {message} ({code})")
    return None


@dataclass(frozen=True)
class StoredFile:
    path: str  # relative to the snapshot folder, as stored (with .age when encrypted)
    bytes: int
    sha256: str
    encrypted: bool
    rows: int | None = None


class _HashingWriter(io.RawIOBase):
    """Pass-through writer that counts and hashes the bytes that reach storage."""

    def __init__(self, sink: BinaryIO):
        self._sink = sink
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._sink.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)


def _encryption():
    # Imported lazily: pyrage is only needed when encryption is configured.
    from . import encryption

    return encryption


class SnapshotStore:
    """Read and write the files of one snapshot (`root/partition_key/`)."""

    def __init__(self, root: str, partition_key: str, *, encryption_config=None, setting: str = "BACKUP_ROOT"):
        self.root = root.rstrip("/")
        self.setting = setting  # which setting names this root, for error messages
        self.partition_key = partition_key
        self.fs, self.root_path = fsspec.core.url_to_fs(self.root)
        self.folder = posixpath.join(self.root_path, partition_key)
        # Without an explicit config the store follows the environment (BACKUP_AGE_*), so every
        # reader of a snapshot decrypts transparently.
        self.encryption = encryption_config if encryption_config is not None else _encryption().config_from_env()
        self.is_local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))

    @property
    def encrypted(self) -> bool:
        return bool(self.encryption.enabled)

    def url(self, relpath: str = "") -> str:
        """Where a file lives, for people: a local path, or a URL on object stores."""
        base = posixpath.join(self.root, self.partition_key) if "://" in self.root else self.folder
        return posixpath.join(base, relpath).rstrip("/")

    def stored_name(self, relpath: str) -> str:
        return relpath + ENCRYPTED_SUFFIX if self.encrypted else relpath

    def _full(self, relpath: str) -> str:
        return posixpath.join(self.folder, relpath)

    def ensure_writable(self) -> None:
        try:
            self.fs.makedirs(self.folder, exist_ok=True)
            probe = self._full(f".write-probe-{uuid.uuid4().hex}")
            with self.fs.open(probe, "wb") as handle:
                handle.write(b"ok")
            self.fs.rm(probe)
        except Exception as error:
            if (explained := explain(error, self.root, self.setting)) is not None:
                raise explained from None
            if not isinstance(error, OSError):
                raise
            raise StorageError(
                f"cannot write to {self.setting} {self.root}: {error.strerror or error} "
                f"(point {self.setting} at a writable folder or bucket)",
                permanent=True,
            ) from None

    @contextmanager
    def writer(self, relpath: str, *, plaintext: bool = False) -> Iterator[tuple[BinaryIO, dict]]:
        """Yield (file, info); when the block ends cleanly the file is in place and
        info["stored"] holds its StoredFile. `plaintext=True` is only for the manifest and reports."""
        encrypt = self.encrypted and not plaintext
        name = relpath + ENCRYPTED_SUFFIX if encrypt else relpath
        with self.stored_writer(name) as (hashing, info):
            if encrypt:
                with _encryption().encrypting_writer(hashing, self.encryption, name=name) as plain:
                    yield plain, info
            else:
                yield hashing, info

    @contextmanager
    def stored_writer(self, stored_path: str) -> Iterator[tuple[BinaryIO, dict]]:
        """Like `writer`, for bytes already in their stored form (an encrypted file copied as it
        is, never decrypted): written atomically and hashed, info["stored"] set at the end."""
        final = self._full(stored_path)
        parent = posixpath.dirname(final)
        self.fs.makedirs(parent, exist_ok=True)
        temp = posixpath.join(parent, f".tmp-{uuid.uuid4().hex}-{posixpath.basename(stored_path)}") if self.is_local else final
        info: dict = {}
        try:
            with self.fs.open(temp, "wb") as raw:
                hashing = _HashingWriter(raw)
                yield hashing, info
            if temp != final:
                self.fs.mv(temp, final)
        except BaseException:
            if self.fs.exists(temp):
                self.fs.rm(temp)
            raise
        info["stored"] = StoredFile(stored_path, hashing.size, hashing.sha256.hexdigest(), stored_path.endswith(ENCRYPTED_SUFFIX))

    @contextmanager
    def stored_reader(self, stored_path: str) -> Iterator[BinaryIO]:
        """A stored file's bytes as they are on storage (still encrypted when it ends in .age)."""
        with self.fs.open(self._full(stored_path), "rb") as raw:
            yield raw

    @contextmanager
    def reader(self, stored_path: str) -> Iterator[BinaryIO]:
        """Open a stored file for reading, decrypting transparently when it ends in .age."""
        with self.stored_reader(stored_path) as raw:
            if stored_path.endswith(ENCRYPTED_SUFFIX):
                with _encryption().decrypting_reader(raw, self.encryption, name=stored_path) as plain:
                    yield plain
            else:
                yield raw

    def write_json(self, relpath: str, payload: dict, *, plaintext: bool = False) -> StoredFile:
        with self.writer(relpath, plaintext=plaintext) as (handle, info):
            handle.write(json.dumps(payload, indent=2, sort_keys=False).encode())
        return info["stored"]

    def read_json(self, stored_path: str) -> dict:
        with self.reader(stored_path) as handle:
            return json.loads(handle.read())

    def describe(self, stored_path: str) -> StoredFile:
        """Size and sha256 of a stored file, read back from storage."""
        digest = hashlib.sha256()
        size = 0
        with self.fs.open(self._full(stored_path), "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        return StoredFile(stored_path, size, digest.hexdigest(), stored_path.endswith(ENCRYPTED_SUFFIX))

    def exists(self, relpath: str) -> bool:
        return self.fs.exists(self._full(relpath))

    def remove(self, relpath: str) -> None:
        if self.fs.exists(self._full(relpath)):
            self.fs.rm(self._full(relpath), recursive=True)

    def list_files(self, under: str = "") -> list[str]:
        """Every file under the snapshot folder (or its subfolder `under`), relative, temporary files excluded."""
        top = posixpath.join(self.folder, under) if under else self.folder
        if not self.fs.exists(top):
            return []
        found = self.fs.find(top)
        prefix = self.folder.rstrip("/") + "/"
        rel = [f[len(prefix):] if f.startswith(prefix) else f.split(self.folder.lstrip("/") + "/", 1)[-1] for f in found]
        return sorted(r for r in rel if not posixpath.basename(r).startswith((".tmp-", ".write-probe-")))

    # ---- table data -----------------------------------------------------------------------------

    @staticmethod
    def table_dir(table: Table) -> str:
        return f"tables/{table.file_stem}"

    def table_parts(self, table: Table) -> list[str]:
        # List only the table's own folder: a whole-snapshot listing per table is one object-store
        # LIST per table read (restore, checks, verify).
        return [f for f in self.list_files(self.table_dir(table)) if ".parquet" in f]

    def parquet_file(self, stored_path: str) -> pq.ParquetFile:
        """Open one Parquet part. Encrypted parts are decrypted into memory: parts are bounded
        in size (see backup.PART_BYTES), so memory stays flat however large the table is."""
        if stored_path.endswith(ENCRYPTED_SUFFIX):
            with self.reader(stored_path) as handle:
                return pq.ParquetFile(pa.BufferReader(handle.read()))
        return pq.ParquetFile(self.fs.open(self._full(stored_path), "rb"))

    def iter_batches(self, table: Table, columns: list[str] | None = None, batch_size: int = 65_536) -> Iterator[pa.RecordBatch]:
        for part in self.table_parts(table):
            parquet = self.parquet_file(part)
            yield from parquet.iter_batches(batch_size=batch_size, columns=columns)

    def parquet_rows(self, table: Table) -> int:
        return sum(self.parquet_file(p).metadata.num_rows for p in self.table_parts(table))
