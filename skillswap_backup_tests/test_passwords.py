"""Password hashes must be ones the Node app accepts: checked against vectors made by Node."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from skillswap_backup.lib.passwords import (
    detect_scheme,
    hash_password,
    looks_hashed,
    new_password,
    verify_password,
)

PASSWORD = "correct horse battery staple"
# Made with bcryptjs 3 (`hashSync(PASSWORD, 10)`) and with the passport-local template's
# hashPassword (Node's crypto.scrypt, salt "0123…cdef"), so these pin the formats Node writes.
NODE_BCRYPT = "$2b$10$2EMa2cLhL9NtmJMarVLggef29ZJstrlHBcGekApyOlh6k3aLBeXl6"
NODE_SCRYPT = (
    "b9e4c0458defb164feba9d9ffbec86e4ddffb2a590e4afa11b8a170fbd1512180c3a5eefbb59f1d53515369c1639cc3cf"
    "7f291109291b9082c04aebd75e4c8cb.0123456789abcdef0123456789abcdef"
)

# The template's comparePasswords, verbatim in spirit: split on ".", scrypt with the salt text.
NODE_COMPARE = """
const { scryptSync, timingSafeEqual } = require("crypto");
const [password, stored] = process.argv.slice(1);
const [hashed, salt] = stored.split(".");
const ok = timingSafeEqual(Buffer.from(hashed, "hex"), scryptSync(password, salt, 64));
process.stdout.write(ok ? "match" : "mismatch");
"""


def test_new_passwords_are_long_and_distinct():
    passwords = {new_password() for _ in range(50)}
    assert len(passwords) == 50
    assert all(len(p) >= 32 for p in passwords)


def test_bcrypt_hash_has_node_prefix_and_cost_and_verifies():
    stored = hash_password(PASSWORD)
    assert stored.startswith("$2b$10$") and len(stored) == 60
    assert verify_password(PASSWORD, stored) is True
    assert verify_password(PASSWORD + "!", stored) is False


def test_bcrypt_salts_differ():
    assert hash_password(PASSWORD) != hash_password(PASSWORD)


def test_scrypt_hash_matches_template_format_and_verifies():
    stored = hash_password(PASSWORD, "scrypt")
    key, salt = stored.split(".")
    assert len(key) == 128 and len(salt) == 32
    assert int(key, 16) >= 0 and int(salt, 16) >= 0
    assert verify_password(PASSWORD, stored) is True
    assert verify_password("wrong", stored) is False


def test_verifies_hashes_made_by_node():
    assert verify_password(PASSWORD, NODE_BCRYPT) is True
    assert verify_password(PASSWORD, NODE_SCRYPT) is True
    assert verify_password("Correct horse battery staple", NODE_BCRYPT) is False
    assert verify_password("Correct horse battery staple", NODE_SCRYPT) is False


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_node_accepts_our_scrypt_hash():
    stored = hash_password(PASSWORD, "scrypt")
    result = subprocess.run(
        ["node", "-e", NODE_COMPARE, PASSWORD, stored], capture_output=True, text=True, check=True
    )
    assert result.stdout == "match"


def test_bcrypt_compares_first_72_bytes_like_node():
    long_password = "x" * 72
    stored = hash_password(long_password)
    assert verify_password(long_password + "ignored by bcrypt", stored) is True
    with pytest.raises(ValueError, match="72 bytes"):
        hash_password("x" * 73)


@pytest.mark.parametrize(
    ("stored", "scheme"),
    [
        (NODE_BCRYPT, "bcrypt"),
        ("$2a$12$" + "a" * 53, "bcrypt"),
        ("$2y$10$" + "B" * 53, "bcrypt"),
        (NODE_SCRYPT, "scrypt"),
        ("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g", "argon2"),
        ("pbkdf2_sha256$600000$salt$aGFzaA==", "pbkdf2"),
        ("pbkdf2:sha256:600000$salt$abcdef0123", "pbkdf2"),
        ("$pbkdf2-sha256$29000$salt$hash", "pbkdf2"),
        ("scrypt:32768:8:1$salt$abcdef", "werkzeug-scrypt"),
        ("$6$rounds=5000$salt$hash", "crypt"),
        ("{SSHA}c2FsdGVkaGFzaA==", "ldap"),
        ("hunter2", None),
        ("", None),
        ("a" * 64, None),
        ("$2b$10$tooshort", None),
    ],
)
def test_detect_scheme(stored, scheme):
    assert detect_scheme(stored) == scheme


def test_bare_hex_digests_look_hashed_but_plaintext_does_not():
    assert looks_hashed("5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8") is True
    assert looks_hashed(NODE_BCRYPT) is True
    assert looks_hashed("password123") is False


def test_unsupported_schemes_are_clear_errors():
    with pytest.raises(ValueError, match="cannot write 'argon2'"):
        hash_password(PASSWORD, "argon2")
    with pytest.raises(ValueError, match=r"cannot verify this password hash \(argon2\)"):
        verify_password(PASSWORD, "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA")
    with pytest.raises(ValueError, match="unrecognised"):
        verify_password(PASSWORD, "plaintext")
