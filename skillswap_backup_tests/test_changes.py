"""`skillswap-backup changes`: rows added, changed and removed between two real snapshots of a
database that was edited in between (rows, a new column, a table without a primary key)."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from skillswap_backup.cli.main import main
from skillswap_backup.lib import changes
from skillswap_backup.lib.manifest import read_manifest
from skillswap_backup.lib.restore import snapshot_catalog
from skillswap_backup.lib.storage import SnapshotStore
from skillswap_backup_tests.lifecycle_support import demo_source, discover, environment
from skillswap_backup_tests.restore_support import backup_snapshot, one_line, run_cli

BEFORE, AFTER = "2026-11-15", "2026-11-22"
NEW_HASH = "$2b$10$abcdefghijklmnopqrstuuLJ3t6t6b9f0ZlHgZ3Tq3rQ1TQvDgq1u"

EDITS = f"""
UPDATE users SET password = '{NEW_HASH}' WHERE id = 3;           -- only the (sanitized) password
UPDATE users SET bio = 'a new bio' WHERE id = 2;
ALTER TABLE skills ADD COLUMN level int;
INSERT INTO skills (name, category, description, level) SELECT 'Knitting (Nordic)', category, description, 3 FROM skills WHERE id = 1;
DELETE FROM swap_ratings WHERE id = 1;
DELETE FROM notifications;
DELETE FROM tags WHERE name = 'x' AND ctid = (SELECT min(ctid) FROM tags WHERE name = 'x');
INSERT INTO tags VALUES ('y'), ('z');
"""


@pytest.fixture(scope="module")
def edited(tmp_path_factory):
    """Snapshot BEFORE, the edits, a new discover (the new column), snapshot AFTER; yields (tmp, CLI env)."""
    tmp = tmp_path_factory.mktemp("changes")
    with demo_source("ssb_test_changes", tmp) as url, dg.instance_for_test() as instance:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE tags (name text); INSERT INTO tags VALUES ('x'), ('x'), ('y')")
        discover(url, tmp / "catalog.json")
        backup_snapshot(BEFORE, instance)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(EDITS)
        discover(url, tmp / "catalog.json")
        backup_snapshot(AFTER, instance)
        yield tmp, {"BACKUP_ROOT": str(tmp / "backups"), "BACKUP_CATALOG": str(tmp / "catalog.json")}


def _line(out: str, table: str) -> list[str]:
    (found,) = [line for line in out.splitlines() if line.startswith(table + " ")]
    return found.split()


def test_counts_per_table_and_the_exported_rows(edited, tmp_path):
    tmp, env = edited
    result = run_cli("changes", "-o", str(tmp_path / "out"), env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"changes from snapshot {BEFORE} to {AFTER} ")
    # table, before, after, added, changed, removed
    assert _line(out, "public.users")[:6] == ["public.users", "24", "24", "0", "2", "0"]
    assert _line(out, "public.skills")[:6] == ["public.skills", "127", "128", "1", "0", "0"]
    assert "new columns: level" in out  # no old row counts as changed for a column it never had
    assert _line(out, "public.swap_ratings")[:6] == ["public.swap_ratings", "8", "7", "0", "0", "1"]
    assert _line(out, "public.notifications")[:6] == ["public.notifications", "3", "0", "0", "0", "3"]
    assert _line(out, "public.tags")[:6] == ["public.tags", "3", "4", "2", "0", "1"]
    assert "matched by whole row" in " ".join(_line(out, "public.tags"))
    assert _line(out, "public.swap_requests")[3:6] == ["0", "0", "0"]
    assert _line(out, "total")[1:] == ["280", "278", "3", "2", "5"]

    exported = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert exported == ["changes.json", "notifications.json", "skills.json", "swap_ratings.json", "tags.json", "users.json"]
    users = json.loads((tmp_path / "out" / "users.json").read_text())
    # The changed rows as the JSON tier shows them in the later snapshot: password left out.
    tier = {row["id"]: row for row in json.loads((tmp / "backups" / AFTER / "json" / "users.json").read_text())}
    # In the snapshot's row order (an updated row moves to the table's end in PostgreSQL).
    assert sorted(users["rows_changed"], key=lambda row: row["id"]) == [tier[2], tier[3]]
    assert tier[2]["bio"] == "a new bio" and "password" not in tier[3]
    assert NEW_HASH not in (tmp_path / "out" / "users.json").read_text()
    assert (users["since"], users["snapshot"], users["matched_by"]) == (BEFORE, AFTER, ["id"])
    skills = json.loads((tmp_path / "out" / "skills.json").read_text())
    assert [(r["id"], r["name"], r["level"]) for r in skills["rows_added"]] == [(128, "Knitting (Nordic)", 3)]
    assert skills["columns_added"] == ["level"] and skills["rows_changed"] == []
    assert json.loads((tmp_path / "out" / "swap_ratings.json").read_text())["rows_removed"] == [{"id": 1}]
    assert json.loads((tmp_path / "out" / "notifications.json").read_text())["rows_removed"] == [{"id": 1}, {"id": 2}, {"id": 3}]
    tags = json.loads((tmp_path / "out" / "tags.json").read_text())
    assert sorted(r["name"] for r in tags["rows_added"]) == ["y", "z"] and tags["rows_removed"] == [{"name": "x"}]
    assert tags["matched_by"] == "whole row"
    summary = json.loads((tmp_path / "out" / "changes.json").read_text())
    assert {t["table"]: (t["added"], t["changed"], t["removed"]) for t in summary["tables"]}["public.users"] == (0, 2, 0)


def test_backwards_the_same_changes_read_the_other_way(edited):
    tmp, env = edited
    result = run_cli("changes", BEFORE, "--since", AFTER, env=env)
    assert result.returncode == 0, result.stderr
    assert _line(result.stdout, "public.skills")[:6] == ["public.skills", "128", "127", "0", "0", "1"]
    assert "columns gone: level" in result.stdout
    assert _line(result.stdout, "public.tags")[3:6] == ["1", "0", "2"]


def test_partitions_on_disk_give_the_same_answer_as_one(edited):
    """Tables larger than the partition size are compared a partition at a time (flat memory)."""
    tmp, _ = edited
    root = str(tmp / "backups")
    old, new = SnapshotStore(root, BEFORE), SnapshotStore(root, AFTER)
    pairs = changes.pairs(snapshot_catalog(read_manifest(old)), snapshot_catalog(read_manifest(new)))
    for before, after in pairs:
        whole = changes.compare_table(old, new, before, after)
        split = changes.compare_table(old, new, before, after, window_rows=20)
        for kind in ("added", "changed", "removed"):
            assert getattr(split, kind).tolist() == getattr(whole, kind).tolist(), (after or before).qualified


def test_bad_requests_are_one_line(edited, capsys):
    _, env = edited
    with environment(**env):
        assert main(["changes", BEFORE]) == 1
        one_line(capsys.readouterr().err, f"snapshot {BEFORE} is the oldest complete one", "--since")
        assert main(["changes", AFTER, "--since", AFTER]) == 1
        one_line(capsys.readouterr().err, f"--since {AFTER} is the snapshot itself")
        assert main(["changes", "--since", "2020-01-05"]) == 1
        one_line(capsys.readouterr().err, "'2020-01-05' is not a complete snapshot")
        blocked = Path(env["BACKUP_ROOT"]) / BEFORE / "manifest.json"
        assert main(["changes", "-o", str(blocked / "out")]) == 1
        one_line(capsys.readouterr().err, f"cannot create {blocked / 'out'}")
