"""Password hashes in the formats web apps store, for rotating secrets after a restore.

A restored database is a copy of production, admin passwords included; `restore --rotate-secrets`
replaces them with new random ones. The new hash must be one the app itself accepts, so this
module writes the two formats Node apps most often use:

- ``bcrypt``: ``$2b$10$…`` as the `bcrypt` / `bcryptjs` packages write it (cost 10, their default);
- ``scrypt``: the passport-local template's ``hex(key) + "." + salt``, where ``salt`` is
  ``randomBytes(16).toString("hex")`` and the key is ``scrypt(password, salt, 64)`` with Node's
  defaults (N=16384, r=8, p=1). Note the template feeds the salt's *hex text* to scrypt, not
  its 16 raw bytes; a hash made from the raw bytes would never verify in the app.

`HASH_FORMATS` also recognises other well-known formats (argon2, pbkdf2, crypt(3), LDAP): the
sanitizer uses the same patterns to find password hashes in columns with innocent names, and
`detect_scheme` tells the rotation which format an app uses even where it cannot write it.
The patterns are written in the common subset of Python `re` and RE2, so Arrow can run them
vectorised over whole columns.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

import bcrypt

BCRYPT_COST = 10
# bcrypt reads only the first 72 bytes of a password; Node's implementations truncate silently.
BCRYPT_MAX_BYTES = 72

SCRYPT_N, SCRYPT_R, SCRYPT_P = 16384, 8, 1
SCRYPT_KEY_BYTES = 64
SCRYPT_SALT_BYTES = 16

HASH_FORMATS: dict[str, str] = {
    "bcrypt": r"^\$2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{53}$",
    "scrypt": r"^[0-9a-f]{128}\.[0-9a-f]{32}$",
    "argon2": r"^\$argon2(id|i|d)\$[^\s]+$",
    "pbkdf2": (
        r"^(pbkdf2_sha(1|256|512)\$[0-9]+\$[^$\s]+\$[A-Za-z0-9+/=]+"
        r"|pbkdf2:sha(1|256|512):[0-9]+\$[^$\s]+\$[0-9a-f]+"
        r"|\$pbkdf2(-sha(1|256|512))?\$[0-9]+\$[^\s]+)$"
    ),
    "werkzeug-scrypt": r"^scrypt:[0-9]+:[0-9]+:[0-9]+\$[^$\s]+\$[0-9a-f]+$",
    "crypt": r"^\$(1|5|6|7|y|gy|scrypt|md5|sha1)\$[^\s]+$",
    "ldap": r"^\{(SSHA|SHA|SSHA256|SSHA512|SMD5|MD5|CRYPT)\}[^\s]+$",
}

# Bare hex digests (MD5, SHA-1, SHA-256, SHA-512): hashes when found in a password column, but
# indistinguishable from checksums or tokens anywhere else, so only `looks_hashed` accepts them.
HEX_DIGEST = r"^([0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64}|[0-9a-fA-F]{128})$"

ANY_HASH_FORMAT = "|".join(f"(?:{pattern})" for pattern in HASH_FORMATS.values())

_COMPILED = {scheme: re.compile(pattern) for scheme, pattern in HASH_FORMATS.items()}
_HEX_DIGEST = re.compile(HEX_DIGEST)

WRITABLE_SCHEMES = ("bcrypt", "scrypt")


def new_password() -> str:
    """A random password with 192 bits of entropy, URL-safe so it survives copy and paste."""
    return secrets.token_urlsafe(24)


def detect_scheme(stored: str) -> str | None:
    """The name of the `HASH_FORMATS` entry `stored` matches, or None if it looks like no hash."""
    return next((scheme for scheme, pattern in _COMPILED.items() if pattern.match(stored)), None)


def looks_hashed(stored: str) -> bool:
    """True for any known hash format and for bare hex digests (unsalted, but not plaintext)."""
    return detect_scheme(stored) is not None or _HEX_DIGEST.match(stored) is not None


def hash_password(password: str, scheme: str = "bcrypt") -> str:
    if scheme == "bcrypt":
        return _bcrypt_hash(password)
    if scheme == "scrypt":
        return _scrypt_hash(password)
    raise ValueError(f"cannot write {scheme!r} password hashes; choose one of {', '.join(WRITABLE_SCHEMES)}")


def verify_password(password: str, stored: str) -> bool:
    scheme = detect_scheme(stored)
    if scheme == "bcrypt":
        # Node's bcrypt hashed only the first 72 bytes, so compare the same prefix.
        return bcrypt.checkpw(password.encode()[:BCRYPT_MAX_BYTES], stored.encode())
    if scheme == "scrypt":
        key_hex, salt = stored.split(".")
        return hmac.compare_digest(_scrypt_key(password, salt).hex(), key_hex)
    raise ValueError(
        f"cannot verify this password hash ({scheme or 'unrecognised format'}); expected bcrypt or scrypt"
    )


def _bcrypt_hash(password: str) -> str:
    raw = password.encode()
    if len(raw) > BCRYPT_MAX_BYTES:
        raise ValueError(
            f"bcrypt uses only the first {BCRYPT_MAX_BYTES} bytes of a password; use a shorter one"
        )
    return bcrypt.hashpw(raw, bcrypt.gensalt(rounds=BCRYPT_COST, prefix=b"2b")).decode()


def _scrypt_hash(password: str) -> str:
    salt = secrets.token_hex(SCRYPT_SALT_BYTES)
    return f"{_scrypt_key(password, salt).hex()}.{salt}"


def _scrypt_key(password: str, salt: str) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt.encode(), n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=SCRYPT_KEY_BYTES
    )
