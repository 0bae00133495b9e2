"""Data-quality asset checks (Great Expectations suites from the catalog) on the table assets."""

from .checks import ChecksUnavailable, build_table_checks, check_result, default_asset_key

__all__ = ["ChecksUnavailable", "build_table_checks", "check_result", "default_asset_key"]
