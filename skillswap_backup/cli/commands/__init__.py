"""The CLI's commands, one module each; add a module here to add a command."""

from . import backup, changes, copy, demo_db, discover, list_snapshots, prune, report, restore, sql, status, verify

COMMAND_MODULES = [demo_db, discover, backup, list_snapshots, changes, verify, copy, prune, status, restore, sql, report]
