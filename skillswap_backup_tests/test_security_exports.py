"""The readable tier of real backups: sanitized JSON holds no password hash, no session data and
(anonymized) no personal data, yet stays joinable; plaintext password columns are reported."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from dagster._serdes import serialize_value

from skillswap_backup.lib.catalog import load_catalog
from skillswap_backup.lib.storage import SnapshotStore
from skillswap_backup_tests.lifecycle_support import backup_partition, environment
from skillswap_backup_tests.security_support import (
    API_KEY_MARKER,
    LEGACY_PASSWORDS,
    SESSION_MARKER,
    files_containing,
    security_source,
)

PLAIN, ANONYMIZED = "2026-03-01", "2026-03-08"


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory):
    """The security source backed up twice: as is (PLAIN) and with BACKUP_ANONYMIZE=1 (ANONYMIZED)."""
    tmp = tmp_path_factory.mktemp("sec_exports")
    with security_source("ssb_test_sec_exp", tmp) as url, dg.instance_for_test() as instance:
        plain = backup_partition(PLAIN, instance)
        with environment(BACKUP_ANONYMIZE="1"):
            anonymized = backup_partition(ANONYMIZED, instance)
        yield {
            "url": url,
            "root": tmp / "backups",
            "catalog": load_catalog(tmp / "catalog.json"),
            "instance": instance,
            "runs": {PLAIN: plain.run_id, ANONYMIZED: anonymized.run_id},
        }


def _json(root: Path, key: str, table: str) -> list[dict]:
    return json.loads((root / key / "json" / f"{table}.json").read_text())


def _source(url: str, query: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def test_plain_json_holds_no_password_hash_session_or_secret(snapshots):
    root = snapshots["root"]
    hashes = [r[0] for r in _source(snapshots["url"], "SELECT password FROM users")]
    assert all(h.startswith("$2b$") for h in hashes) and len(hashes) >= 20  # the source does hold them
    readable = [root / PLAIN / "json", root / PLAIN / "meta", root / PLAIN / "extras", root / PLAIN / "reports"]
    needles = ["$2b$", SESSION_MARKER, API_KEY_MARKER, *LEGACY_PASSWORDS, *hashes[:5]]
    leaks = {path: hits for folder in readable for path, hits in files_containing(folder, needles).items()}
    assert leaks == {}
    users = _json(root, PLAIN, "users")
    assert len(users) == len(hashes) and "password" not in users[0] and "email" in users[0]
    legacy = _json(root, PLAIN, "legacy_accounts")
    assert [sorted(r) for r in legacy] == [["id", "login", "user_id"]] * 3  # password and api_key dropped


def test_session_table_is_left_out_of_json_but_kept_in_parquet(snapshots):
    root = snapshots["root"]
    assert not (root / PLAIN / "json" / "session.json").exists()
    manifest = json.loads((root / PLAIN / "manifest.json").read_text())
    assert manifest["tables"]["public.session"]["json_excluded"] is True
    assert not any(p.startswith("json/session") for p in manifest["tables"]["public.session"]["files"])
    # The restore source keeps every session, byte for byte.
    store = SnapshotStore(str(root), PLAIN)
    table = snapshots["catalog"].table("session")
    rows = [row for batch in store.iter_batches(table) for row in batch.to_pylist()]
    source = dict(_source(snapshots["url"], "SELECT sid, sess::text FROM session"))
    assert {r["sid"]: r["sess"] for r in rows} == source
    assert all(SESSION_MARKER in sess for sess in source.values())


def test_dagster_event_log_holds_no_hash_or_session_data(snapshots):
    instance = snapshots["instance"]
    text = "\n".join(serialize_value(entry) for entry in instance.all_logs(snapshots["runs"][PLAIN]))
    assert "public.users" in text and "preview" in text  # the metadata is there to be scanned
    for needle in ("$2b$", SESSION_MARKER, API_KEY_MARKER, *LEGACY_PASSWORDS):
        assert needle not in text


def test_anonymized_json_keeps_foreign_keys_joinable_and_emails_unique(snapshots):
    root, catalog = snapshots["root"], snapshots["catalog"]
    exported = {t.qualified: _json(root, ANONYMIZED, t.file_stem) for t in catalog.tables
                if (root / ANONYMIZED / "json" / f"{t.file_stem}.json").exists()}
    users = exported["public.users"]
    emails = [u["email"] for u in users]
    assert all(e.startswith("user-") and e.endswith("@example.invalid") for e in emails)
    assert len(set(emails)) == len(emails) == len(_source(snapshots["url"], "SELECT 1 FROM users"))
    checked = 0
    for table in catalog.tables:
        if table.qualified not in exported:
            continue
        for fk in table.foreign_keys:
            parent = exported[fk.ref_qualified]
            keys = {tuple(row[c] for c in fk.ref_columns) for row in parent}
            children = [tuple(row[c] for c in fk.columns) for row in exported[table.qualified]]
            dangling = [c for c in children if None not in c and c not in keys]
            assert dangling == [], f"{table.qualified} {fk.name}"
            checked += len(children)
    assert checked > 200
    # Joined on the faked email, each subscription still belongs to the same user as in the source.
    by_email = {u["email"]: u["id"] for u in users}
    joined = sorted((by_email[s["email"]], s["topic"]) for s in exported["public.newsletter_subscriptions"])
    source = _source(snapshots["url"], "SELECT u.id, s.topic FROM newsletter_subscriptions s JOIN users u USING (email) ORDER BY 1, 2")
    assert joined == [tuple(r) for r in source] and len(joined) >= 16


def test_anonymized_json_holds_no_source_email_or_name(snapshots):
    people = _source(snapshots["url"], "SELECT email, first_name, last_name FROM users")
    emails = sorted(e for e, _, _ in people)
    names = sorted({f'"{n}"' for _, f, l in people for n in (f, l)})  # as JSON string values
    assert files_containing(snapshots["root"] / ANONYMIZED / "json", emails + names) == {}
    # Without --anonymize the same values are in the export: the scan can see them.
    plain = files_containing(snapshots["root"] / PLAIN / "json", emails + names)
    assert {Path(p).name for p in plain} >= {"users.json", "newsletter_subscriptions.json"}


def test_plaintext_password_column_is_a_finding(snapshots):
    root, instance = snapshots["root"], snapshots["instance"]
    manifest = json.loads((root / PLAIN / "manifest.json").read_text())
    assert [(f["kind"], f["table"], f["column"]) for f in manifest["findings"]] == [
        ("plaintext_password", "public.legacy_accounts", "password")
    ]
    assert LEGACY_PASSWORDS[0] not in json.dumps(manifest)
    materialization = instance.get_latest_materialization_event(dg.AssetKey(["skillswap", "legacy_accounts"]))
    assert "plaintext" in materialization.asset_materialization.metadata["security_findings"].value
    users = instance.get_latest_materialization_event(dg.AssetKey(["skillswap", "users"]))
    assert users.asset_materialization.metadata["security_findings"].value == "none"
    warnings = [e.message for e in instance.all_logs(snapshots["runs"][PLAIN]) if e.level == 30]  # logging.WARNING
    assert any("security finding" in m and "public.legacy_accounts.password" in m for m in warnings)
