"""The console logger of CLI-launched runs: each message of a run as the step wrote it.

Dagster's default console line carries the time, logger, level, job, run id and step before
every message, which the CLI's own header already says once. Errors keep only their first
line: a step failure's stack trace is in the run's event log (the UI), and the CLI ends with one
line naming what failed.
"""

import logging
import sys

import dagster as dg


class _Brief(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        meta = getattr(record, "dagster_meta", None) or {}
        lines = str(meta.get("orig_message") or record.getMessage()).strip().splitlines() or [""]
        if record.levelno >= logging.ERROR:
            return f"  error: {lines[0]}"
        prefix = "warning: " if record.levelno >= logging.WARNING else ""
        return "\n".join(f"  {prefix}{line}" for line in lines)


@dg.logger(
    config_schema={"log_level": dg.Field(str, default_value="INFO", is_required=False)},
    description="One short line per message (no Dagster prefix) on stderr, for `skillswap-backup` commands.",
)
def cli_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.Logger("skillswap_backup.cli", level=init_context.logger_config["log_level"])
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Brief())
    logger.addHandler(handler)
    return logger
