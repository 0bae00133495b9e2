"""age encryption at rest: round trips, bad keys, damaged files, and the standard `age` CLI."""

from __future__ import annotations

import io
import os
import pty
import select
import shutil
import subprocess
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pyrage
import pytest

from skillswap_backup.lib.encryption import (
    CHUNK_SIZE,
    EncryptionConfig,
    EncryptionError,
    config_from_env,
    decrypting_reader,
    encrypting_writer,
    generate_identity,
    is_age_file,
    write_identity_file,
)

needs_age_cli = pytest.mark.skipif(shutil.which("age") is None, reason="the age CLI is not installed")

PASSPHRASE = "correct horse battery staple"
FAST_SCRYPT = 10  # the tests' own files; the default (18) is covered once, by the CLI test


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "key.txt"
    write_identity_file(path)
    return path


@pytest.fixture
def x25519_config(key_file: Path) -> EncryptionConfig:
    recipient = next(
        line.split(": ")[1] for line in key_file.read_text().splitlines() if line.startswith("# public key")
    )
    return config_from_env({"BACKUP_AGE_RECIPIENTS": recipient, "BACKUP_AGE_IDENTITY": str(key_file)})


@pytest.fixture
def passphrase_config() -> EncryptionConfig:
    return EncryptionConfig(passphrase=PASSPHRASE, scrypt_work_factor=FAST_SCRYPT)


@pytest.fixture(params=["x25519", "passphrase"])
def config(request, x25519_config, passphrase_config) -> EncryptionConfig:
    return x25519_config if request.param == "x25519" else passphrase_config


def encrypt_to_file(path: Path, payload: bytes, config: EncryptionConfig, piece: int = 4093) -> Path:
    with path.open("wb") as sink, encrypting_writer(sink, config) as plaintext:
        for start in range(0, len(payload), piece):
            plaintext.write(payload[start : start + piece])
    return path


def decrypt_file(path: Path, config: EncryptionConfig, piece: int = 5003) -> bytes:
    out = bytearray()
    with path.open("rb") as source, decrypting_reader(source, config) as plaintext:
        while block := plaintext.read(piece):
            out += block
    return bytes(out)


def test_round_trip_of_5_mb_in_small_pieces(tmp_path, config):
    payload = os.urandom(5 * 1024 * 1024)
    encrypted = encrypt_to_file(tmp_path / "data.bin.age", payload, config)
    stored = encrypted.read_bytes()
    assert is_age_file(stored)
    assert payload[:4096] not in stored
    assert len(stored) > len(payload)
    assert decrypt_file(encrypted, config) == payload


@pytest.mark.parametrize(
    "size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE, 3 * CHUNK_SIZE + 7]
)
def test_chunk_boundaries_round_trip_and_match_rage(tmp_path, config, size):
    payload = os.urandom(size)
    stored = encrypt_to_file(tmp_path / "f.age", payload, config).read_bytes()
    assert decrypt_file(tmp_path / "f.age", config) == payload
    # rage, the reference implementation, must read our files too (whole-buffer API is fine here).
    if config.passphrase:
        assert pyrage.passphrase.decrypt(stored, PASSPHRASE) == payload
    else:
        assert pyrage.decrypt(stored, list(config.identities)) == payload


def test_reads_passphrase_files_written_by_rage(tmp_path, passphrase_config):
    payload = os.urandom(3 * CHUNK_SIZE + 11)
    path = tmp_path / "rage.age"
    path.write_bytes(pyrage.passphrase.encrypt(payload, PASSPHRASE))
    assert decrypt_file(path, passphrase_config) == payload


def test_parquet_written_through_the_encrypting_writer(tmp_path, config):
    table = pa.table({"id": list(range(10_000)), "email": [f"user{i}@example.com" for i in range(10_000)]})
    path = tmp_path / "users.parquet.age"
    with (
        path.open("wb") as sink,
        encrypting_writer(sink, config) as plaintext,
        pq.ParquetWriter(plaintext, table.schema) as writer,
    ):
        for batch in table.to_batches(max_chunksize=1000):
            writer.write_batch(batch)
    assert b"user42@example.com" not in path.read_bytes()
    assert pq.read_table(io.BytesIO(decrypt_file(path, config))).equals(table)


def test_wrong_identity_is_one_clear_error(tmp_path, x25519_config):
    encrypted = encrypt_to_file(tmp_path / "users.parquet.age", b"secret rows" * 1000, x25519_config)
    other_key = tmp_path / "other.txt"
    write_identity_file(other_key)
    wrong = config_from_env({"BACKUP_AGE_IDENTITY": str(other_key)})
    with (
        pytest.raises(EncryptionError) as caught,
        encrypted.open("rb") as source,
        decrypting_reader(source, wrong),
    ):
        pytest.fail("a wrong key must fail before the caller gets a reader")
    message = str(caught.value)
    assert "users.parquet.age" in message
    assert "no identity matches" in message and "BACKUP_AGE_IDENTITY" in message
    assert "\n" not in message


def test_wrong_passphrase_is_one_clear_error(tmp_path, passphrase_config):
    encrypted = encrypt_to_file(tmp_path / "dump.age", b"x" * 100, passphrase_config)
    with (
        pytest.raises(EncryptionError, match=r"wrong passphrase.*BACKUP_AGE_PASSPHRASE"),
        encrypted.open("rb") as f,
        decrypting_reader(f, EncryptionConfig(passphrase="not it")),
    ):
        pytest.fail("a wrong passphrase must fail before the caller gets a reader")


def test_missing_keys_are_clear_errors(tmp_path, x25519_config, passphrase_config):
    x_file = encrypt_to_file(tmp_path / "a.age", b"x", x25519_config)
    p_file = encrypt_to_file(tmp_path / "b.age", b"x", passphrase_config)
    with pytest.raises(EncryptionError, match="no age identity configured"):
        decrypt_file(x_file, passphrase_config)
    with pytest.raises(EncryptionError, match="encrypted with a passphrase"):
        decrypt_file(p_file, x25519_config)
    with pytest.raises(EncryptionError, match="no age recipient configured"):
        encrypt_to_file(tmp_path / "c.age", b"x", EncryptionConfig())


def test_truncation_at_a_chunk_boundary_is_detected(tmp_path, config):
    encrypted = encrypt_to_file(tmp_path / "t.age", os.urandom(3 * CHUNK_SIZE + 100), config)
    stored = encrypted.read_bytes()
    # Drop the last (short) chunk: what is left ends exactly after a complete, authentic chunk.
    last_chunk = 100 + 16
    encrypted.write_bytes(stored[:-last_chunk])
    with pytest.raises(EncryptionError, match="truncated"):
        decrypt_file(encrypted, config)


@pytest.mark.parametrize("cut", [1, 5000, 70_000])
def test_truncation_anywhere_is_detected(tmp_path, config, cut):
    encrypted = encrypt_to_file(tmp_path / "t.age", os.urandom(3 * CHUNK_SIZE + 100), config)
    encrypted.write_bytes(encrypted.read_bytes()[:-cut])
    with pytest.raises(EncryptionError, match=r"t\.age"):
        decrypt_file(encrypted, config)


def test_truncation_inside_the_header_is_detected(tmp_path, config):
    encrypted = encrypt_to_file(tmp_path / "h.age", b"payload", config)
    encrypted.write_bytes(encrypted.read_bytes()[:40])
    with pytest.raises(EncryptionError, match="truncated or not an age-encrypted file"):
        decrypt_file(encrypted, config)


@pytest.mark.parametrize(
    ("where", "error"),
    [
        ("first chunk", "corrupted or was tampered with"),
        ("middle chunk", "corrupted or was tampered with"),
        ("last byte", "corrupted or was tampered with"),
        ("header mac", "header was tampered with"),
        ("file key stanza", "no identity matches|wrong passphrase|malformed"),
    ],
)
def test_a_changed_byte_is_detected(tmp_path, config, where, error):
    encrypted = encrypt_to_file(tmp_path / "f.age", os.urandom(3 * CHUNK_SIZE), config)
    stored = bytearray(encrypted.read_bytes())
    header_end = stored.index(b"\n", stored.index(b"\n--- ") + 1) + 1
    if where in ("header mac", "file key stanza"):
        # Swap one base64 character for another, so the header still parses.
        first_body_line = stored.index(b"\n", len(b"age-encryption.org/v1\n")) + 1
        offset = header_end - 5 if where == "header mac" else first_body_line + 5
        stored[offset] = ord("B") if stored[offset] == ord("A") else ord("A")
    else:
        offset = {
            "first chunk": header_end + 16 + 10,
            "middle chunk": header_end + 16 + CHUNK_SIZE + 16 + 500,
            "last byte": len(stored) - 1,
        }[where]
        stored[offset] ^= 0x01
    encrypted.write_bytes(bytes(stored))
    with pytest.raises(EncryptionError, match=error):
        decrypt_file(encrypted, config)


def test_header_text_that_is_not_base64_is_malformed(tmp_path, config):
    encrypted = encrypt_to_file(tmp_path / "f.age", b"x", config)
    stored = encrypted.read_bytes()
    mac_at = stored.index(b"\n--- ") + 5
    encrypted.write_bytes(stored[:mac_at] + b"!" + stored[mac_at + 1 :])
    with pytest.raises(EncryptionError, match="age header is malformed"):
        decrypt_file(encrypted, config)


def test_plaintext_is_not_an_age_file(tmp_path, config):
    plain = tmp_path / "users.json"
    plain.write_text('{"id": 1}' * 100)
    with pytest.raises(EncryptionError, match=r"users\.json: it is not an age-encrypted file"):
        decrypt_file(plain, config)


def test_an_error_inside_the_block_leaves_a_file_that_never_decrypts(tmp_path, config):
    path = tmp_path / "partial.age"
    with (
        pytest.raises(RuntimeError, match="COPY failed"),
        path.open("wb") as sink,
        encrypting_writer(sink, config) as plaintext,
    ):
        plaintext.write(os.urandom(5 * CHUNK_SIZE))
        raise RuntimeError("COPY failed")
    with pytest.raises(EncryptionError):
        decrypt_file(path, config)


def test_a_failing_sink_stops_the_writer_with_a_clear_error(tmp_path, x25519_config):
    class FullDisk(io.RawIOBase):
        written = 0

        def writable(self):
            return True

        def write(self, data):
            if self.written > 100_000:
                raise OSError(28, "No space left on device")
            self.written += len(data)
            return len(data)

    with (
        pytest.raises(EncryptionError, match=r"cannot write encrypted users\.parquet\.age: .*No space left"),
        encrypting_writer(FullDisk(), x25519_config, name="users.parquet.age") as plaintext,
    ):
        for _ in range(100):
            plaintext.write(os.urandom(CHUNK_SIZE))


def test_writes_after_the_block_fail(tmp_path, config):
    with (tmp_path / "x.age").open("wb") as sink, encrypting_writer(sink, config) as plaintext:
        plaintext.write(b"a")
    with pytest.raises(ValueError):
        plaintext.write(b"late")


@pytest.mark.parametrize("direction", ["encrypt", "decrypt"])
def test_memory_stays_bounded(tmp_path, x25519_config, direction):
    size, piece = 32 * 1024 * 1024, 256 * 1024
    block = os.urandom(piece)

    class Discard(io.RawIOBase):
        def writable(self):
            return True

        def write(self, data):
            return len(data)

    if direction == "decrypt":
        encrypted = tmp_path / "big.age"
        with encrypted.open("wb") as sink, encrypting_writer(sink, x25519_config) as plaintext:
            for _ in range(size // piece):
                plaintext.write(block)
    tracemalloc.start()
    try:
        if direction == "encrypt":
            with encrypting_writer(Discard(), x25519_config) as plaintext:
                for _ in range(size // piece):
                    plaintext.write(block)
        else:
            total = 0
            with encrypted.open("rb") as source, decrypting_reader(source, x25519_config) as plaintext:
                while data := plaintext.read(piece):
                    total += len(data)
            assert total == size
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes while streaming {size} bytes"


@needs_age_cli
def test_age_cli_decrypts_our_file_with_the_key_file(tmp_path, key_file, x25519_config):
    payload = os.urandom(CHUNK_SIZE * 3 + 17)
    encrypted = encrypt_to_file(tmp_path / "users.parquet.age", payload, x25519_config)
    out = tmp_path / "users.parquet"
    subprocess.run(["age", "-d", "-i", str(key_file), "-o", str(out), str(encrypted)], check=True)
    assert out.read_bytes() == payload


@needs_age_cli
def test_we_decrypt_what_the_age_cli_encrypts(tmp_path, key_file, x25519_config):
    payload = os.urandom(CHUNK_SIZE * 2)
    plain, encrypted = tmp_path / "in.bin", tmp_path / "in.bin.age"
    plain.write_bytes(payload)
    subprocess.run(["age", "-e", "-i", str(key_file), "-o", str(encrypted), str(plain)], check=True)
    assert decrypt_file(encrypted, x25519_config) == payload


@needs_age_cli
def test_age_cli_decrypts_our_passphrase_file(tmp_path):
    payload = os.urandom(CHUNK_SIZE + 5)
    encrypted = encrypt_to_file(tmp_path / "dump.age", payload, EncryptionConfig(passphrase=PASSPHRASE))
    assert b"-> scrypt " in encrypted.read_bytes()[:100] and b" 18\n" in encrypted.read_bytes()[:100]
    out = tmp_path / "dump"
    status, transcript = run_age_with_passphrase(["-d", "-o", str(out), str(encrypted)], PASSPHRASE)
    assert status == 0, transcript
    assert out.read_bytes() == payload


def run_age_with_passphrase(args: list[str], passphrase: str, timeout: float = 60) -> tuple[int, bytes]:
    """age reads passphrases only from a terminal, so give it one."""
    pid, terminal = pty.fork()
    if pid == 0:
        os.execvp("age", ["age", *args])
    transcript, answered = b"", False
    try:
        while select.select([terminal], [], [], timeout)[0]:
            try:
                chunk = os.read(terminal, 1024)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            transcript += chunk
            if not answered and b"passphrase" in transcript.lower():
                os.write(terminal, passphrase.encode() + b"\n")
                answered = True
    finally:
        os.close(terminal)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), transcript


def test_config_from_env_parses_keys_and_reports_enabled(tmp_path, key_file):
    _, other = generate_identity()
    _, third = generate_identity()
    config = config_from_env(
        {"BACKUP_AGE_RECIPIENTS": f" {other} ,{third}", "BACKUP_AGE_IDENTITY": str(key_file)}
    )
    assert [str(r) for r in config.recipients] == [other, third]
    assert len(config.identities) == 1
    assert config.enabled and config.can_decrypt
    assert not config_from_env({}).enabled
    assert not config_from_env({"BACKUP_AGE_IDENTITY": str(key_file)}).enabled
    assert config_from_env({"BACKUP_AGE_PASSPHRASE": "pw"}).enabled


def test_identity_file_is_private_and_in_age_keygen_layout(key_file):
    assert key_file.stat().st_mode & 0o777 == 0o600
    lines = key_file.read_text().splitlines()
    assert lines[0].startswith("# created: ")
    assert lines[1].startswith("# public key: age1")
    assert lines[2].startswith("AGE-SECRET-KEY-1")


def test_bad_recipient_names_the_variable(tmp_path):
    _, good = generate_identity()
    with pytest.raises(
        EncryptionError, match="BACKUP_AGE_RECIPIENTS entry 2 is not an age X25519 public key"
    ):
        config_from_env({"BACKUP_AGE_RECIPIENTS": f"{good},age1notakey"})


def test_bad_identity_file_names_the_line_but_never_the_secret(tmp_path):
    secret, _ = generate_identity()
    damaged = secret[:-3] + "QQQ"
    path = tmp_path / "key.txt"
    path.write_text(f"# comment\n\n{damaged}\n")
    with pytest.raises(EncryptionError) as caught:
        config_from_env({"BACKUP_AGE_IDENTITY": str(path)})
    message = str(caught.value)
    assert "BACKUP_AGE_IDENTITY" in message and "line 3" in message and str(path) in message
    assert damaged not in message and "AGE-SECRET-KEY-1" + damaged[16:20] not in message


def test_missing_or_empty_identity_file(tmp_path):
    with pytest.raises(
        EncryptionError, match=r"BACKUP_AGE_IDENTITY points to .*nope\.txt, which cannot be read"
    ):
        config_from_env({"BACKUP_AGE_IDENTITY": str(tmp_path / "nope.txt")})
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(EncryptionError, match="holds no age identity"):
        config_from_env({"BACKUP_AGE_IDENTITY": str(empty)})


def test_passphrase_and_recipients_are_exclusive_and_the_passphrase_never_shows():
    _, recipient = generate_identity()
    with pytest.raises(EncryptionError, match="not both"):
        config_from_env({"BACKUP_AGE_RECIPIENTS": recipient, "BACKUP_AGE_PASSPHRASE": "hunter2"})
    assert "hunter2" not in repr(config_from_env({"BACKUP_AGE_PASSPHRASE": "hunter2"}))
