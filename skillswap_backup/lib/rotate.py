"""After a restore: revoke what the copy carried over, and say which app secrets to regenerate.

A restored database is a copy of production, sessions and admin passwords included; the user
moving providers must not open the new app with the old cookies and passwords still valid.
`rotate_secrets(target_url)` does, in one transaction on the restored database:

1. **Sessions**: every table matching the sanitize policy's session-table rules (`session`,
   `sessions`, `*_session(s)`: connect-pg-simple, Replit Auth, …) is emptied, so every cookie the
   old deployment issued stops working.
2. **Admin passwords**: in each table with a password column (named like one *and* holding
   password hashes), the rows flagged as admins (a boolean `is_admin` / `admin` / `is_superuser`
   column, or a role column equal to `admin`, `administrator`, `superadmin`, …) get a new random
   password, hashed in the format the app already stores (detected from the hashes; bcrypt when
   none is found; `scheme=` forces bcrypt or the passport-local scrypt `hex.salt`).

The new passwords are written to a new file readable by its owner only (0600) *before* the
transaction commits, and the file is removed again if the commit fails: no password exists that
the database does not accept, and none is ever printed, logged or put in Dagster metadata.
`RotationReport.checklist` lists what the database cannot rotate itself: SESSION_SECRET, the
DATABASE_URL, and every API-key-, secret- or token-like column and table found in the schema.
"""

from __future__ import annotations

import os
import secrets as random_tokens
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from psycopg import sql

from . import passwords, pg, sanitize

ADMIN_FLAG_COLUMNS = ("is_admin", "admin", "is_superuser", "superuser", "is_super_admin", "super_admin", "is_staff")
ROLE_COLUMNS = ("role", "roles", "user_role", "user_roles", "account_role", "user_type", "account_type", "access_level")
ADMIN_ROLES = ("admin", "administrator", "superadmin", "super_admin", "super-admin", "superuser", "root")
LOGIN_COLUMNS = ("email", "username", "user_name", "login", "email_address", "handle", "name")
SESSION_PATTERN_WORD = "session"
DEFAULT_SECRETS_DIR = ".skillswap/secrets"

_COLUMNS_SQL = """
SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
       COALESCE(et.typcategory, t.typcategory), t.typcategory = 'A'
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid AND c.relkind IN ('r', 'p')
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
WHERE a.attnum > 0 AND NOT a.attisdropped
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'
  AND NOT c.relispartition
ORDER BY n.nspname, c.relname, a.attnum
"""


class RotateError(Exception):
    """One line: what could not be rotated and what to do. Never holds a password."""


@dataclass
class _Column:
    name: str
    pg_type: str
    category: str  # pg_type.typcategory (of the element, for arrays): S string, B boolean, E enum, …
    is_array: bool


@dataclass
class _Table:
    schema: str
    name: str
    columns: list[_Column] = field(default_factory=list)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


@dataclass
class RotationReport:
    target: str
    sessions_emptied: dict[str, int] = field(default_factory=dict)  # table -> rows removed
    admins_reset: dict[str, int] = field(default_factory=dict)  # table.column -> accounts
    schemes: dict[str, str] = field(default_factory=dict)  # table.column -> hash format written
    secrets_file: str | None = None
    checklist: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        for table, rows in self.sessions_emptied.items():
            out.append(f"sessions: emptied {table} ({rows} rows): every old login cookie is void")
        if not self.sessions_emptied:
            out.append("sessions: no session table found")
        for column, count in self.admins_reset.items():
            out.append(f"admin passwords: {count} reset in {column} ({self.schemes[column]} hashes)")
        if self.secrets_file:
            out.append(f"new admin passwords are in {self.secrets_file} (mode 0600): hand them over safely, then delete it")
        out += [f"note: {note}" for note in self.notes]
        out.append("regenerate these app secrets before going live:")
        out += [f"  [ ] {item}" for item in self.checklist]
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RotationReport:
        return cls(**data)


def _snake_matches(patterns, name: str) -> bool:
    snake = sanitize.snake_name(name)
    return any(snake == p for p in patterns)


def reflect(conn: psycopg.Connection) -> list[_Table]:
    tables: dict[tuple[str, str], _Table] = {}
    for schema, name, column, pg_type, category, is_array in conn.execute(_COLUMNS_SQL).fetchall():
        table = tables.setdefault((schema, name), _Table(schema, name))
        table.columns.append(_Column(column, pg_type, category, bool(is_array)))
    return list(tables.values())


def session_tables(tables: list[_Table], policy: sanitize.SanitizePolicy) -> list[_Table]:
    """Tables matching the policy's session-table patterns (the exclude_tables rules about sessions)."""
    patterns = [p for p in policy.exclude_tables if SESSION_PATTERN_WORD in p.lower()]
    return [t for t in tables if any(sanitize._pattern_matches(p, (t.schema, t.name)) for p in patterns)]


def _is_password_name(name: str) -> bool:
    import fnmatch

    return any(fnmatch.fnmatchcase(sanitize.snake_name(name), p) for p in sanitize.PASSWORD_COLUMN_PATTERNS)


def _admin_condition(table: _Table) -> sql.Composable | None:
    """SQL true for the rows of `table` that are admins, from flag and role columns; None if it has neither."""
    parts: list[sql.Composable] = []
    for column in table.columns:
        ident = sql.Identifier(column.name)
        if column.category == "B" and not column.is_array and _snake_matches(ADMIN_FLAG_COLUMNS, column.name):
            parts.append(sql.SQL("{} IS TRUE").format(ident))
        elif column.category in ("S", "E") and _snake_matches(ROLE_COLUMNS, column.name):
            roles = sql.Literal(list(ADMIN_ROLES))
            if column.is_array:
                parts.append(sql.SQL("EXISTS (SELECT 1 FROM unnest({}) AS r (v) WHERE lower(r.v::text) = ANY({}))").format(ident, roles))
            else:
                parts.append(sql.SQL("lower({}::text) = ANY({})").format(ident, roles))
    return sql.SQL(" OR ").join(sql.SQL("({})").format(p) for p in parts) if parts else None


def _login_column(table: _Table) -> str | None:
    by_snake = {sanitize.snake_name(c.name): c.name for c in table.columns if c.category == "S" and not c.is_array}
    return next((by_snake[name] for name in LOGIN_COLUMNS if name in by_snake), None)


def _scheme_of(stored: list[str]) -> tuple[str | None, Counter]:
    """The most common password-hash format among `stored` values."""
    found = Counter(passwords.detect_scheme(v) for v in stored if v)
    found.pop(None, None)
    return (found.most_common(1)[0][0] if found else None), found


def secret_like_columns(tables: list[_Table], policy: sanitize.SanitizePolicy) -> list[str]:
    """`table.column` of every column the policy drops as a secret, key or token (passwords excluded)."""
    found = []
    for table in tables:
        for column in table.columns:
            if _is_password_name(column.name):
                continue
            for rule in policy.columns:
                if rule.action == "drop" and rule.first_match(table.schema, table.name, column.name):
                    found.append(f"{table.qualified}.{column.name}")
                    break
    return found


def default_secrets_file(target_url: str) -> Path:
    dbname = pg.describe(target_url).rsplit("/", 1)[-1] or "database"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path(DEFAULT_SECRETS_DIR) / f"admin-passwords-{dbname}-{stamp}-{random_tokens.token_hex(2)}.txt"


def _create_private_file(path: Path) -> int:
    """Open a new file for writing that only its owner can read; never overwrite an existing one."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise RotateError(f"{path} already exists; pass another --secrets-file (an existing file is never overwritten)") from None
    except OSError as error:
        raise RotateError(f"cannot create the admin password file {path}: {error.strerror}; pass a writable --secrets-file") from None


def rotate_secrets(
    target_url: str,
    *,
    scheme: str | None = None,
    secrets_file: Path | None = None,
    policy: sanitize.SanitizePolicy | None = None,
) -> RotationReport:
    """Empty session tables, reset admin passwords (new ones in a 0600 file), list secrets to regenerate."""
    if scheme not in (None, *passwords.WRITABLE_SCHEMES):
        raise RotateError(f"unknown password scheme {scheme!r}; choose {' or '.join(passwords.WRITABLE_SCHEMES)}")
    policy = policy or sanitize.load_policy()
    report = RotationReport(target=pg.describe(target_url))
    issued: list[tuple[str, str, str]] = []  # (table.column, account, password): only ever written to the file
    with pg.connect(target_url, purpose="restore target") as conn:
        tables = reflect(conn)
        for table in session_tables(tables, policy):
            rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table.ident)).fetchone()[0]
            try:
                conn.execute(sql.SQL("TRUNCATE {}").format(table.ident))
            except psycopg.Error as error:
                raise RotateError(
                    f"cannot empty session table {table.qualified}: {error.diag.message_primary}; nothing was rotated"
                ) from None
            report.sessions_emptied[table.qualified] = rows
        for table in tables:
            for column in table.columns:
                if column.category != "S" or column.is_array or not _is_password_name(column.name):
                    continue
                issued += _reset_admins(conn, table, column, scheme, report)
        report.checklist = _checklist(tables, policy, report)
        if issued:
            path = (secrets_file or default_secrets_file(target_url)).expanduser().resolve()
            fd = _create_private_file(path)
            try:
                with os.fdopen(fd, "w") as handle:
                    handle.write(_secrets_text(report.target, issued))
                    handle.flush()
                    os.fsync(handle.fileno())
                conn.commit()
            except BaseException:
                path.unlink(missing_ok=True)  # the database kept the old passwords: these are void
                raise
            report.secrets_file = str(path)
        else:
            conn.commit()
    return report


def _reset_admins(conn: psycopg.Connection, table: _Table, column: _Column, scheme: str | None, report: RotationReport) -> list[tuple[str, str, str]]:
    where = f"{table.qualified}.{column.name}"
    stored = [r[0] for r in conn.execute(
        sql.SQL("SELECT {c} FROM {t} WHERE {c} IS NOT NULL AND {c} <> '' LIMIT 1000").format(c=sql.Identifier(column.name), t=table.ident)
    ).fetchall()]
    detected, formats = _scheme_of(stored)
    if stored and not formats:
        report.notes.append(f"{where} does not hold password hashes (plaintext?); its admin passwords were not reset")
        return []
    condition = _admin_condition(table)
    if condition is None:
        if stored:
            report.notes.append(f"{where} holds password hashes but {table.qualified} has no admin flag or role column; reset admin passwords in the app")
        return []
    chosen = scheme or detected or "bcrypt"
    if chosen not in passwords.WRITABLE_SCHEMES:
        report.notes.append(
            f"{where} holds {detected} hashes, which this tool cannot write; reset its admin passwords in the app "
            "(or pass --password-scheme bcrypt|scrypt if the app accepts those)"
        )
        return []
    login = _login_column(table)
    selected = sql.SQL("SELECT ctid, {login} FROM {t} WHERE {cond} FOR UPDATE").format(
        login=sql.Identifier(login) if login else sql.SQL("NULL"), t=table.ident, cond=condition
    )
    issued = []
    for ctid, account in conn.execute(selected).fetchall():
        password = passwords.new_password()
        conn.execute(
            sql.SQL("UPDATE {t} SET {c} = %s WHERE ctid = %s").format(t=table.ident, c=sql.Identifier(column.name)),
            (passwords.hash_password(password, chosen), ctid),
        )
        issued.append((where, str(account) if account is not None else f"row {ctid}", password))
    if issued:
        report.admins_reset[where] = len(issued)
        report.schemes[where] = chosen
    return issued


def _checklist(tables: list[_Table], policy: sanitize.SanitizePolicy, report: RotationReport) -> list[str]:
    items = [
        "SESSION_SECRET (or whatever signs the app's cookies / JWTs): set a new random value in the new deployment, "
        "e.g. `openssl rand -hex 32`",
        "DATABASE_URL: point the app at the new database; then change the old database's password or delete it",
    ]
    columns = secret_like_columns(tables, policy)
    if columns:
        items.append(f"API keys, secrets and tokens stored in {', '.join(columns)}: issue new ones and revoke the old")
    token_tables = [
        t.qualified for t in tables
        if policy.exclusion(_as_catalog_table(t)) and t.qualified not in report.sessions_emptied
    ]
    if token_tables:
        items.append(f"token tables {', '.join(token_tables)}: revoke what the old deployment issued")
    items.append("keys the app keeps outside the database (OAuth client secrets, SMTP, payment, storage): rotate any the old host could read")
    return items


def _as_catalog_table(table: _Table):
    """Just enough of a catalog Table for the policy's table patterns."""
    from types import SimpleNamespace

    return SimpleNamespace(schema=table.schema, name=table.name)


def _secrets_text(target: str, issued: list[tuple[str, str, str]]) -> str:
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    lines = [
        f"# skillswap-backup restore --rotate-secrets into {target} at {when}",
        "# New admin passwords. Hand each to its admin over a safe channel, then delete this file.",
        "# column\taccount\tnew password",
    ]
    lines += [f"{where}\t{account}\t{password}" for where, account, password in issued]
    return "\n".join(lines) + "\n"
