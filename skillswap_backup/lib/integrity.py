"""Before a restore writes anything, every file it will read is checked from its first byte to its last.

age authenticates each 64 KiB chunk as it is decrypted: a wrong key fails at once, but a
truncated or altered file fails only at the damaged chunk — in the middle of a load, after the
schema and other tables are already in the target. So `check_restore_inputs` reads each file the
restore needs once, before the target is touched: the stored bytes against the manifest's size and
sha256 (works without the key), and, for an encrypted file, a full decryption whose plaintext is
thrown away chunk by chunk, so age's own authentication vouches for every chunk and the key is
known to be right. Only then does the restore start. Memory stays bounded; nothing is written.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from . import dumps
from .storage import ENCRYPTED_SUFFIX, SnapshotStore

_READ = 1 << 20


class DamagedFile(Exception):
    """A snapshot file does not match its manifest; one line naming it and what to do."""


@dataclass
class CheckedInputs:
    files: int
    bytes: int
    decrypted: int  # how many of them were decrypted end to end

    def line(self) -> str:
        decrypted = f", {self.decrypted} decrypted end to end" if self.decrypted else ""
        return f"checked {self.files} snapshot files ({self.bytes} bytes) against the manifest{decrypted}"


class _HashingReader:
    def __init__(self, raw) -> None:
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.sha256.update(data)
        self.size += len(data)
        return data


def restore_inputs(manifest: dict, *, tables: list[str], source: str, mode: str) -> list[str]:
    """Stored paths of every file a restore of `tables` reads, as listed in the manifest."""
    listed = {f["path"] for f in manifest["files"]}

    def stored(relpath: str) -> list[str]:
        return [p for p in (relpath, relpath + ENCRYPTED_SUFFIX) if p in listed]

    wanted = stored(dumps.SCHEMA_OBJECTS)
    if source == "dump":
        return wanted + stored(dumps.FULL_DUMP)
    if mode == "full":
        wanted += stored(dumps.SCHEMA_DUMP)
    for name in tables:
        wanted += [p for p in manifest["tables"][name]["files"] if ".parquet" in p]
    return wanted


def check_files(store: SnapshotStore, manifest: dict, paths: list[str], *, outcome: str = "nothing was restored") -> CheckedInputs:
    """Size and sha256 of each stored file against the manifest; encrypted files decrypted to their end.

    Raises DamagedFile (or EncryptionError for a missing or wrong key, a cut or altered file)
    naming the first bad file; the message ends with `outcome`: what the caller did not do.
    """
    from .encryption import EncryptionError, decrypting_reader

    recorded = {f["path"]: f for f in manifest["files"]}
    checked = CheckedInputs(0, 0, 0)
    where = f"snapshot {store.partition_key}"
    for path in paths:
        entry = recorded.get(path)
        if entry is None:
            raise DamagedFile(f"{path} is not listed in the manifest of {where}; {outcome}")
        if not store.exists(path):
            raise DamagedFile(
                f"{path} of {where} is missing from storage; {outcome} (use another snapshot)"
            )
        refused: EncryptionError | None = None
        with store.fs.open(f"{store.folder}/{path}", "rb") as raw:
            hashing = _HashingReader(raw)
            if path.endswith(ENCRYPTED_SUFFIX):
                try:
                    with decrypting_reader(hashing, store.encryption, name=path) as plain:
                        while plain.read(_READ):
                            pass
                    checked.decrypted += 1
                except EncryptionError as error:
                    refused = error
            while hashing.read(_READ):
                pass
        # A file that differs from what the backup stored says so first: that is the cause of any
        # decryption failure too. A file as stored that does not decrypt means the wrong key.
        if hashing.size != entry["bytes"] or hashing.sha256.hexdigest() != entry["sha256"]:
            raise DamagedFile(
                f"{path} of {where} does not match its manifest ({hashing.size} bytes stored, "
                f"{entry['bytes']} recorded; sha256 differs): it was changed or damaged after the backup; "
                f"{outcome} (use another snapshot: `skillswap-backup list`)"
            )
        if refused is not None:
            raise EncryptionError(f"{refused}; {outcome}")
        checked.files += 1
        checked.bytes += hashing.size
    return checked


def check_restore_inputs(store: SnapshotStore, manifest: dict, plan) -> CheckedInputs:
    """`check_files` over everything the restore `plan` (a restore.RestorePlan) will read."""
    paths = restore_inputs(manifest, tables=plan.tables, source=plan.source, mode=plan.mode)
    return check_files(store, manifest, paths)
