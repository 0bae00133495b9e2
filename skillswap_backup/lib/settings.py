"""Where things live, read from the environment when asked (never at import time)."""

from __future__ import annotations

import os
from pathlib import Path

from importlib.resources import files

REPO_ROOT = Path(__file__).resolve().parents[2]

DEFAULT_BACKUP_ROOT = "backups"
DEFAULT_CATALOG = ".skillswap/catalog.json"
DEFAULT_DAGSTER_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/skillswap_dagster"


class SettingMissing(Exception):
    pass


def database_url(override: str | None = None) -> str:
    url = override or os.environ.get("DATABASE_URL")
    if not url:
        raise SettingMissing("DATABASE_URL is not set; export it or pass --database-url")
    return url


def target_url(override: str | None = None) -> str:
    url = override or os.environ.get("NEW_DATABASE_URL")
    if not url:
        raise SettingMissing("NEW_DATABASE_URL is not set; export it or pass --target-url")
    return url


def backup_root() -> str:
    return os.environ.get("BACKUP_ROOT") or DEFAULT_BACKUP_ROOT


def copy_roots() -> list[str]:
    """BACKUP_COPIES: more places (folders or fsspec URLs, comma-separated) that every snapshot
    is copied to after its backup, each laid out like BACKUP_ROOT."""
    return split_list(os.environ.get("BACKUP_COPIES"))


def anonymize_json() -> bool:
    """BACKUP_ANONYMIZE=1 applies the PII rules to the JSON exports."""
    return os.environ.get("BACKUP_ANONYMIZE", "").lower() in ("1", "true", "yes")


def catalog_path() -> Path:
    return Path(os.environ.get("BACKUP_CATALOG") or DEFAULT_CATALOG)


def tier_policy_path() -> Path:
    custom = os.environ.get("BACKUP_TIER_POLICY")
    return Path(custom) if custom else Path(str(files("skillswap_backup") / "policies" / "tiers.json"))


def split_list(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def ensure_dagster_home() -> Path:
    """Point DAGSTER_HOME at the folder holding dagster.yaml, so CLI runs land in the UI's instance."""
    os.environ.setdefault("DAGSTER_PG_URL", DEFAULT_DAGSTER_PG_URL)
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"])
    home = REPO_ROOT if (REPO_ROOT / "dagster.yaml").exists() else Path.cwd()
    os.environ["DAGSTER_HOME"] = str(home)
    return home
