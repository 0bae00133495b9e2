"""The restore target: a database URL that reaches the run only through the environment."""

from __future__ import annotations

import dagster as dg
from pydantic import Field


class RestoreTarget(dg.ConfigurableResource):
    """The database a restore writes into (NEW_DATABASE_URL); never part of run config."""

    url: str = Field(description="Connection URL of the restore target (set through the NEW_DATABASE_URL env var).")
