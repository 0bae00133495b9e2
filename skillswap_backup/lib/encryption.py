"""Encryption at rest with age: streaming, standard format, configured from the environment.

Every encrypted snapshot file is a plain age v1 file, so `age -d -i key.txt file.age` (or
`age -d file.age` for a passphrase) recovers it without this project. Memory stays bounded:
nothing here holds more than about a megabyte of a file, whatever its size.

Two code paths write and read the same format:

- **X25519 recipients** (the normal case) go through pyrage, i.e. the rage implementation.
  pyrage (1.2.1 to 1.4 at least) offers whole-buffer `encrypt`/`decrypt`, path-based
  `encrypt_file`/`decrypt_file`, and `encrypt_io(reader, writer, recipients)` /
  `decrypt_io(reader, writer, identities)`, which *pull* a whole stream through in one call.
  Our callers push plaintext into a file object (a ParquetWriter, a COPY loop) and pull
  plaintext out of one (a restore), so pyrage runs in a worker thread joined to the caller by
  a bounded in-memory `_Channel`. The channel carries failures as well as bytes: if the
  caller's block raises, the worker's next read raises, so rage stops *before* writing the
  final STREAM chunk and the partial output can never decrypt as a complete file; if rage
  fails (bad sink, bad ciphertext), the caller's next write or read raises.
- **A passphrase** (age's scrypt recipient) has no streaming API in pyrage (`pyrage.passphrase`
  takes and returns whole byte strings), so this module implements that recipient and age's
  STREAM payload on `cryptography`'s primitives. The tests check it against rage and the `age` CLI.

Integrity: age authenticates every 64 KiB chunk, and the final chunk carries a "last" flag in its
nonce, so a file cut at a chunk boundary fails too. Plaintext is released chunk by chunk *before*
the end is verified, as in any streaming decryption: a reader must consume to the end, and treat
an error there as fatal for everything it has done with the data (the restore does this in one
transaction).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import io
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path
from typing import BinaryIO

import pyrage
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from pyrage import x25519

RECIPIENTS_VAR = "BACKUP_AGE_RECIPIENTS"
IDENTITY_VAR = "BACKUP_AGE_IDENTITY"
PASSPHRASE_VAR = "BACKUP_AGE_PASSPHRASE"

AGE_MAGIC = b"age-encryption.org/v1\n"

CHUNK_SIZE = 64 * 1024  # age's STREAM chunk of plaintext
TAG_SIZE = 16
SEALED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
PAYLOAD_NONCE_SIZE = 16
FILE_KEY_SIZE = 16

DEFAULT_SCRYPT_WORK_FACTOR = 18  # what `age -p` writes: about a second of scrypt
MAX_SCRYPT_WORK_FACTOR = 22  # what `age -d` accepts; 2^22 already needs 4 GiB
_SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"

_CHANNEL_CAPACITY = 1024 * 1024
_MAX_HEADER_SIZE = 1024 * 1024
_HEADER_READ_SIZE = 4096


class EncryptionError(Exception):
    """One line: what failed, on which file, and what to do. Never contains key material."""


@dataclass(frozen=True)
class EncryptionConfig:
    """Keys to encrypt to (`recipients` or `passphrase`) and to decrypt with (`identities`, `passphrase`)."""

    recipients: tuple[x25519.Recipient, ...] = ()
    identities: tuple[x25519.Identity, ...] = ()
    passphrase: str | None = field(default=None, repr=False)
    scrypt_work_factor: int = DEFAULT_SCRYPT_WORK_FACTOR

    def __post_init__(self) -> None:
        if self.recipients and self.passphrase:
            raise EncryptionError(
                f"set {RECIPIENTS_VAR} or {PASSPHRASE_VAR}, not both: "
                "an age file encrypted with a passphrase cannot have other recipients"
            )

    @property
    def enabled(self) -> bool:
        """True when files written now must be encrypted."""
        return bool(self.recipients) or bool(self.passphrase)

    @property
    def can_decrypt(self) -> bool:
        return bool(self.identities) or bool(self.passphrase)


def config_from_env(environ: Mapping[str, str] = os.environ) -> EncryptionConfig:
    """Keys from BACKUP_AGE_RECIPIENTS, BACKUP_AGE_IDENTITY and BACKUP_AGE_PASSPHRASE, read when called."""
    recipients = parse_recipients(environ.get(RECIPIENTS_VAR, ""))
    if not recipients and environ.get(RECIPIENTS_VAR, "").strip():
        # Set to something (", ", a stray separator): encryption was asked for, so never fall back to plaintext.
        raise EncryptionError(f"{RECIPIENTS_VAR} is set but holds no age public key (expected age1…, comma-separated)")
    return EncryptionConfig(
        recipients=recipients,
        identities=load_identities(Path(environ[IDENTITY_VAR])) if environ.get(IDENTITY_VAR) else (),
        passphrase=environ.get(PASSPHRASE_VAR) or None,
    )


def parse_recipients(text: str) -> tuple[x25519.Recipient, ...]:
    """Comma-separated `age1…` public keys, as `age-keygen -y` prints them."""
    recipients = []
    for position, entry in enumerate((e.strip() for e in text.split(",") if e.strip()), start=1):
        try:
            recipients.append(x25519.Recipient.from_str(entry))
        except pyrage.RecipientError:
            raise EncryptionError(
                f"{RECIPIENTS_VAR} entry {position} is not an age X25519 public key "
                "(expected age1…, as printed by `age-keygen -y key.txt`)"
            ) from None
    return tuple(recipients)


def load_identities(path: Path) -> tuple[x25519.Identity, ...]:
    """The `AGE-SECRET-KEY-1…` lines of an identity file as written by age-keygen."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise EncryptionError(
            f"{IDENTITY_VAR} points to {path}, which cannot be read ({exc.strerror}); "
            "set it to the age identity file made by age-keygen"
        ) from None
    identities = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            identities.append(x25519.Identity.from_str(line.strip()))
        except pyrage.IdentityError:
            # The line is secret-shaped; say where it is, never what it holds.
            raise EncryptionError(
                f"{IDENTITY_VAR} file {path} line {number} is not an age identity "
                "(expected AGE-SECRET-KEY-1…, as written by age-keygen)"
            ) from None
    if not identities:
        raise EncryptionError(f"{IDENTITY_VAR} file {path} holds no age identity; create one with age-keygen")
    return tuple(identities)


def generate_identity() -> tuple[str, str]:
    """A new X25519 key pair: (secret identity text, public recipient text)."""
    identity = x25519.Identity.generate()
    return str(identity), str(identity.to_public())


def write_identity_file(path: Path) -> str:
    """Write a new identity file in age-keygen's layout, readable by its owner only; return the recipient."""
    secret, public = generate_identity()
    created = datetime.now(UTC).isoformat(timespec="seconds")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"# created: {created}\n# public key: {public}\n{secret}\n")
    return public


def is_age_file(head: bytes) -> bool:
    """Whether bytes read from the start of a file begin an age (binary format) file."""
    return head.startswith(AGE_MAGIC)


@contextmanager
def encrypting_writer(
    sink: BinaryIO, config: EncryptionConfig, *, name: str | None = None
) -> Iterator[BinaryIO]:
    """Yield a file object; plaintext written to it reaches `sink` as age ciphertext.

    The file is complete only when the block exits normally. If it raises, the last chunk is never
    written, so what reached `sink` does not decrypt; delete it. Do not touch `sink` inside the block.
    """
    label = name or _describe(sink)
    if config.passphrase:
        stream = _native_encrypting(sink, config.passphrase, config.scrypt_work_factor)
    elif config.recipients:
        stream = _pyrage_encrypting(sink, config.recipients, label)
    else:
        raise EncryptionError(
            f"cannot encrypt {label}: no age recipient configured (set {RECIPIENTS_VAR} or {PASSPHRASE_VAR})"
        )
    with stream as writer:
        try:
            yield writer
        finally:
            writer.close()  # a write after the block would otherwise be lost silently


@contextmanager
def decrypting_reader(
    source: BinaryIO, config: EncryptionConfig, *, name: str | None = None
) -> Iterator[BinaryIO]:
    """Yield a file object whose `read(n)` gives the plaintext of the age file in `source`.

    A missing or wrong key and a malformed header raise on entering the block; truncation and
    tampering raise from `read` at the chunk concerned, at the latest instead of reporting the end.
    """
    label = name or _describe(source)
    header, rest = _read_header(source, label)
    stanzas, mac_input, mac = _parse_header(header, label)
    payload = _SourceAdapter(rest, source)
    if any(stanza.tag == "scrypt" for stanza in stanzas):
        if not config.passphrase:
            raise EncryptionError(
                f"cannot decrypt {label}: it was encrypted with a passphrase (set {PASSPHRASE_VAR})"
            )
        file_key = _unwrap_scrypt(stanzas, config.passphrase, label)
        _check_header_mac(file_key, mac_input, mac, label)
        decryptor = _StreamDecryptor(payload, file_key, label)
        yield io.BufferedReader(_PlaintextReader(lambda _size: decryptor.next_chunk()), CHUNK_SIZE)
        return
    if not config.identities:
        raise EncryptionError(
            f"cannot decrypt {label}: no age identity configured "
            f"(set {IDENTITY_VAR} to the key file that pairs with the recipients used)"
        )
    with _pyrage_decrypting(_SourceAdapter(header + rest, source), config.identities, label) as reader:
        yield reader


# --- the channel between the caller and a pyrage worker thread ---------------------------------


class _Aborted(Exception):
    """The other end of a channel stopped before the stream was complete."""


class _Channel:
    """A bounded byte pipe between two threads that can also carry a failure from either end.

    A failure wins over buffered data: once either side fails, the other side's next call raises.
    """

    def __init__(self, capacity: int = _CHANNEL_CAPACITY) -> None:
        self._cond = threading.Condition()
        self._chunks: deque[memoryview] = deque()
        self._size = 0
        self._capacity = capacity
        self._closed = False
        self._failure: BaseException | None = None

    def put(self, data: bytes) -> None:
        with self._cond:
            while self._size >= self._capacity and self._failure is None:
                self._cond.wait()
            if self._failure is not None:
                raise self._failure
            self._chunks.append(memoryview(data))
            self._size += len(data)
            self._cond.notify_all()

    def get(self, limit: int) -> bytes:
        """Up to `limit` bytes; b"" once the writer closed and everything was read."""
        with self._cond:
            while not self._chunks and not self._closed and self._failure is None:
                self._cond.wait()
            if self._failure is not None:
                raise self._failure
            if not self._chunks:
                return b""
            head = self._chunks.popleft()
            if len(head) > limit:
                self._chunks.appendleft(head[limit:])
                head = head[:limit]
            self._size -= len(head)
            self._cond.notify_all()
            return bytes(head)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def fail(self, failure: BaseException) -> None:
        with self._cond:
            if self._failure is None:
                self._failure = failure
            self._cond.notify_all()


class _ChannelReader:
    """What pyrage reads plaintext from while encrypting."""

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel

    def read(self, size: int = -1) -> bytes:
        return self._channel.get(size if size > 0 else CHUNK_SIZE)


class _ChannelWriter:
    """What pyrage writes plaintext to while decrypting."""

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel

    def write(self, data: bytes) -> int:
        self._channel.put(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


class _SinkAdapter:
    """The caller's sink as pyrage wants it (write returns a count), remembering the sink's own errors."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self.error: Exception | None = None

    def write(self, data: bytes) -> int:
        try:
            self._sink.write(data)
        except Exception as exc:
            self.error = exc
            raise
        return len(data)

    def flush(self) -> None:
        flush = getattr(self._sink, "flush", None)
        if flush is not None:
            flush()


class _SourceAdapter:
    """The caller's source with bytes already read put back in front, remembering its own errors.

    Reading the header ourselves first decides the code path; pyrage then gets the file from its
    first byte again. A read error of the source is reported as such, not as bad ciphertext.
    """

    def __init__(self, prefix: bytes, source: BinaryIO) -> None:
        self._prefix = memoryview(prefix)
        self._source = source
        self.error: Exception | None = None

    def read(self, size: int = -1) -> bytes:
        size = size if size > 0 else CHUNK_SIZE
        if self._prefix:
            head, self._prefix = self._prefix[:size], self._prefix[size:]
            return bytes(head)
        try:
            return self._source.read(size)
        except Exception as exc:
            self.error = exc
            raise


class _Worker(threading.Thread):
    def __init__(self, work: Callable[[], None]) -> None:
        super().__init__(name="age-stream", daemon=True)
        self._work = work
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._work()
        except BaseException as exc:  # handed to the caller's thread, which reports it
            self.error = exc


@contextmanager
def _pyrage_encrypting(
    sink: BinaryIO, recipients: tuple[x25519.Recipient, ...], label: str
) -> Iterator[BinaryIO]:
    channel = _Channel()
    adapter = _SinkAdapter(sink)

    def work() -> None:
        try:
            pyrage.encrypt_io(_ChannelReader(channel), adapter, list(recipients))
        except BaseException as exc:
            channel.fail(_encrypt_failure(label, exc, adapter))
            raise

    worker = _Worker(work)
    worker.start()
    try:
        yield _PlaintextWriter(channel.put)
    except BaseException:
        channel.fail(_Aborted())  # rage's next read raises, so the final chunk is never written
        worker.join()
        raise
    channel.close()
    worker.join()
    if worker.error is not None:
        raise _encrypt_failure(label, worker.error, adapter) from worker.error


@contextmanager
def _pyrage_decrypting(
    source: _SourceAdapter, identities: tuple[x25519.Identity, ...], label: str
) -> Iterator[BinaryIO]:
    channel = _Channel()

    def work() -> None:
        try:
            pyrage.decrypt_io(source, _ChannelWriter(channel), list(identities))
        except BaseException as exc:
            channel.fail(_decrypt_failure(label, exc, source))
            raise
        channel.close()

    worker = _Worker(work)
    worker.start()
    try:
        # Waiting for the first block makes a wrong key or a bad header raise on entering the block.
        first = [channel.get(CHUNK_SIZE)]
        yield io.BufferedReader(
            _PlaintextReader(lambda size: first.pop() if first else channel.get(size)), CHUNK_SIZE
        )
    finally:
        channel.fail(_Aborted())  # stops the worker if the caller left before the end
        worker.join()


def _encrypt_failure(label: str, exc: BaseException, sink: _SinkAdapter) -> EncryptionError:
    if sink.error is not None:
        return EncryptionError(f"cannot write encrypted {label}: {sink.error}")
    return EncryptionError(f"cannot encrypt {label}: {exc}")


def _decrypt_failure(label: str, exc: BaseException, source: _SourceAdapter) -> EncryptionError:
    if source.error is not None:
        return EncryptionError(f"cannot read {label}: {source.error}")
    message = str(exc)
    if "No matching keys" in message:
        return EncryptionError(
            f"cannot decrypt {label}: no identity matches "
            f"(set {IDENTITY_VAR} to the key file that pairs with the recipients used)"
        )
    if "truncated" in message:
        return _truncated(label)
    if "MAC" in message:
        return _tampered_header(label)
    if isinstance(exc, OSError):  # rage reports a failed chunk authentication as an I/O error
        return _corrupted(label)
    return EncryptionError(f"cannot decrypt {label}: not a valid age file ({message})")


def _truncated(label: str) -> EncryptionError:
    return EncryptionError(
        f"cannot decrypt {label}: the file is truncated (copy it again from the backup store, "
        "or use another snapshot)"
    )


def _tampered_header(label: str) -> EncryptionError:
    return EncryptionError(f"cannot decrypt {label}: its age header was tampered with (use another snapshot)")


def _corrupted(label: str) -> EncryptionError:
    return EncryptionError(
        f"cannot decrypt {label}: the ciphertext is corrupted or was tampered with (use another snapshot)"
    )


# --- the file objects callers see ---------------------------------------------------------------


class _PlaintextWriter(io.RawIOBase):
    """The file object callers write plaintext to; it hands on slices of at most one chunk."""

    def __init__(self, put: Callable[[bytes], None]) -> None:
        super().__init__()
        self._put = put
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self.closed:
            raise ValueError("write to a closed encrypting writer")
        view = memoryview(data).cast("B")
        for start in range(0, len(view), CHUNK_SIZE):
            # A copy: the caller may reuse its buffer once write() returns.
            self._put(bytes(view[start : start + CHUNK_SIZE]))
        self._position += len(view)
        return len(view)

    def tell(self) -> int:
        """Plaintext bytes written so far (ParquetWriter needs this for its footer offsets)."""
        return self._position


class _PlaintextReader(io.RawIOBase):
    """A raw stream over a function that returns the next block of plaintext, b"" at the end."""

    def __init__(self, pull: Callable[[int], bytes]) -> None:
        super().__init__()
        self._pull = pull
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if not self._pending:
            self._pending = memoryview(self._pull(len(buffer)))
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


# --- age v1 implemented here, for the scrypt (passphrase) recipient -----------------------------


@dataclass(frozen=True)
class _Stanza:
    tag: str
    args: tuple[str, ...]
    body: bytes


def _b64encode(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def _b64decode(text: bytes | str) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    if raw.endswith(b"="):
        raise ValueError("age forbids base64 padding")
    decoded = base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
    if _b64encode(decoded) != raw:  # unused low bits set: another text for the same bytes
        raise ValueError("age requires canonical base64")
    return decoded


def _hkdf(key: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key)


def _scrypt_key(passphrase: str, salt: bytes, work_factor: int) -> bytes:
    kdf = Scrypt(salt=_SCRYPT_LABEL + salt, length=32, n=2**work_factor, r=8, p=1)
    return kdf.derive(passphrase.encode())


def _header_mac(file_key: bytes, mac_input: bytes) -> bytes:
    return hmac.new(_hkdf(file_key, b"", b"header"), mac_input, sha256).digest()


def _chunk_nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _scrypt_header(passphrase: str, file_key: bytes, work_factor: int) -> bytes:
    salt = os.urandom(16)
    wrapped = ChaCha20Poly1305(_scrypt_key(passphrase, salt, work_factor)).encrypt(bytes(12), file_key, None)
    body = _b64encode(wrapped)  # 43 characters: one body line, shorter than 64 as age requires
    mac_input = AGE_MAGIC + b"-> scrypt " + _b64encode(salt) + b" %d\n" % work_factor + body + b"\n---"
    return mac_input + b" " + _b64encode(_header_mac(file_key, mac_input)) + b"\n"


class _StreamEncryptor:
    """age's STREAM: 64 KiB chunks sealed with ChaCha20-Poly1305, the last one flagged."""

    def __init__(self, sink: BinaryIO, file_key: bytes) -> None:
        nonce = os.urandom(PAYLOAD_NONCE_SIZE)
        sink.write(nonce)
        self._aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
        self._sink = sink
        self._pending = bytearray()
        self._counter = 0

    def write(self, data: bytes) -> None:
        self._pending += data
        # A full chunk waits for one more byte: only then is it known not to be the last.
        while len(self._pending) > CHUNK_SIZE:
            self._seal(bytes(self._pending[:CHUNK_SIZE]), last=False)
            del self._pending[:CHUNK_SIZE]

    def finish(self) -> None:
        self._seal(bytes(self._pending), last=True)

    def _seal(self, chunk: bytes, *, last: bool) -> None:
        self._sink.write(self._aead.encrypt(_chunk_nonce(self._counter, last), chunk, None))
        self._counter += 1


class _StreamDecryptor:
    """Opens STREAM chunks one by one, reading one sealed chunk ahead to know which is the last."""

    def __init__(self, source: _SourceAdapter, file_key: bytes, label: str) -> None:
        nonce = _read_exact(source, PAYLOAD_NONCE_SIZE)
        if len(nonce) < PAYLOAD_NONCE_SIZE:
            raise _truncated(label)
        self._aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
        self._source = source
        self._label = label
        self._ahead = _read_exact(source, SEALED_CHUNK_SIZE)
        self._counter = 0
        self._done = False

    def next_chunk(self) -> bytes:
        if self._done:
            return b""
        sealed = self._ahead
        self._ahead = (
            _read_exact(self._source, SEALED_CHUNK_SIZE) if len(sealed) == SEALED_CHUNK_SIZE else b""
        )
        last = not self._ahead
        try:
            plain = self._aead.decrypt(_chunk_nonce(self._counter, last), sealed, None)
        except InvalidTag:
            raise self._diagnose(sealed, last) from None
        if last and not plain and self._counter > 0:
            raise _corrupted(self._label)  # age forbids an empty last chunk after data
        self._counter += 1
        self._done = last
        return plain

    def _diagnose(self, sealed: bytes, last: bool) -> EncryptionError:
        """A full chunk that opens as a *middle* chunk means the file was cut right after it."""
        if last and len(sealed) == SEALED_CHUNK_SIZE:
            try:
                self._aead.decrypt(_chunk_nonce(self._counter, False), sealed, None)
                return _truncated(self._label)
            except InvalidTag:
                pass
        if len(sealed) < TAG_SIZE:
            return _truncated(self._label)
        return _corrupted(self._label)


@contextmanager
def _native_encrypting(sink: BinaryIO, passphrase: str, work_factor: int) -> Iterator[BinaryIO]:
    file_key = os.urandom(FILE_KEY_SIZE)
    sink.write(_scrypt_header(passphrase, file_key, work_factor))
    stream = _StreamEncryptor(sink, file_key)
    yield _PlaintextWriter(stream.write)
    stream.finish()  # skipped when the block raised: the file then never decrypts


def _read_exact(source: _SourceAdapter, size: int) -> bytes:
    parts, remaining = [], size
    while remaining:
        block = source.read(remaining)
        if not block:
            break
        parts.append(block)
        remaining -= len(block)
    return b"".join(parts)


def _read_header(source: BinaryIO, label: str) -> tuple[bytes, bytes]:
    """The header (through the MAC line) and whatever was read past it."""
    buffered = bytearray()
    while True:
        if not AGE_MAGIC.startswith(bytes(buffered[: len(AGE_MAGIC)])):
            raise EncryptionError(f"cannot decrypt {label}: it is not an age-encrypted file")
        mac_line = buffered.find(b"\n--- ")
        end = buffered.find(b"\n", mac_line + 1) if mac_line >= 0 else -1
        if end >= 0:
            return bytes(buffered[: end + 1]), bytes(buffered[end + 1 :])
        if len(buffered) > _MAX_HEADER_SIZE:
            raise EncryptionError(f"cannot decrypt {label}: its age header is malformed")
        block = source.read(_HEADER_READ_SIZE)
        if not block:
            raise EncryptionError(
                f"cannot decrypt {label}: it is empty, truncated or not an age-encrypted file"
            )
        buffered += block


def _parse_header(header: bytes, label: str) -> tuple[list[_Stanza], bytes, bytes]:
    """Stanzas, the bytes the MAC covers, and the MAC, per age-encryption.org/v1."""
    try:
        lines = header[len(AGE_MAGIC) :].split(b"\n")
        stanzas, index = [], 0
        while lines[index].startswith(b"-> "):
            tag, *args = lines[index][3:].decode("ascii").split(" ")
            body, index = bytearray(), index + 1
            while True:  # body lines are 64 columns; the last one is shorter, possibly empty
                body += lines[index]
                index += 1
                if len(lines[index - 1]) < 64:
                    break
            stanzas.append(_Stanza(tag, tuple(args), _b64decode(bytes(body))))
        if not lines[index].startswith(b"--- ") or not stanzas:
            raise ValueError("no MAC line")
        mac = _b64decode(lines[index][4:])
    except (IndexError, ValueError, binascii.Error) as exc:
        raise EncryptionError(f"cannot decrypt {label}: its age header is malformed ({exc})") from None
    return stanzas, header[: header.rindex(b"\n--- ") + 4], mac


def _unwrap_scrypt(stanzas: list[_Stanza], passphrase: str, label: str) -> bytes:
    malformed = EncryptionError(f"cannot decrypt {label}: its scrypt recipient is malformed")
    if len(stanzas) != 1:
        raise EncryptionError(
            f"cannot decrypt {label}: a passphrase-encrypted age file must have one recipient"
        )
    (stanza,) = stanzas
    if len(stanza.args) != 2 or not stanza.args[1].isdigit() or stanza.args[1].startswith("0"):
        raise malformed
    try:
        salt = _b64decode(stanza.args[0])
    except (ValueError, binascii.Error):
        raise malformed from None
    work_factor = int(stanza.args[1])
    if len(salt) != 16 or len(stanza.body) != FILE_KEY_SIZE + TAG_SIZE:
        raise malformed
    if work_factor > MAX_SCRYPT_WORK_FACTOR:
        raise EncryptionError(
            f"cannot decrypt {label}: its scrypt work factor {work_factor} is above {MAX_SCRYPT_WORK_FACTOR}"
        )
    try:
        return ChaCha20Poly1305(_scrypt_key(passphrase, salt, work_factor)).decrypt(
            bytes(12), stanza.body, None
        )
    except InvalidTag:
        raise EncryptionError(
            f"cannot decrypt {label}: wrong passphrase (set {PASSPHRASE_VAR} to the one used for the backup)"
        ) from None


def _check_header_mac(file_key: bytes, mac_input: bytes, mac: bytes, label: str) -> None:
    if not hmac.compare_digest(_header_mac(file_key, mac_input), mac):
        raise _tampered_header(label)


def _describe(stream: object) -> str:
    name = getattr(stream, "name", None)
    return str(name) if isinstance(name, (str, os.PathLike)) else "<stream>"
