"""The `restore` job: a snapshot back into a new database, verified (see lib/restore.py)."""

from .job import RESTORE_JOB, build_restore_job
from .resources import RestoreTarget

__all__ = ["RESTORE_JOB", "RestoreTarget", "build_restore_job"]
