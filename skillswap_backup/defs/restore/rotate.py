"""The restore job's last step, `rotate_secrets` (off unless asked, e.g. `restore --rotate-secrets`).

After the restore verified, it empties session tables and resets admin passwords in the target
(see lib/rotate.py). The new passwords go only to a 0600 file: the step's metadata and log say
where that file is, how many accounts were reset and which app secrets to regenerate, never a
password.
"""

from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

from ...lib import rotate
from .resources import RestoreTarget

ROTATE_OP = "rotate_secrets"


class RotateSecretsConfig(dg.Config):
    enabled: bool = Field(default=False, description="Rotate after the restore: sessions emptied, admin passwords reset.")
    password_scheme: Literal["detect", "bcrypt", "scrypt"] = Field(
        default="detect",
        description="Hash format of the new admin passwords: as the app stores them (detect), bcrypt, or passport-local scrypt.",
    )
    secrets_file: str | None = Field(
        default=None, description="Where the new admin passwords are written (mode 0600); default .skillswap/secrets/…"
    )


@dg.op(name=ROTATE_OP)
def rotate_secrets(context: dg.OpExecutionContext, config: RotateSecretsConfig, verified: dict, target: RestoreTarget) -> dg.Output[dict]:
    """Empty session tables and reset admin passwords in the restored database; list app secrets to regenerate."""
    if not config.enabled:
        return dg.Output({"enabled": False}, metadata={"rotated": False})
    report = rotate.rotate_secrets(
        target.url,
        scheme=None if config.password_scheme == "detect" else config.password_scheme,
        secrets_file=Path(config.secrets_file) if config.secrets_file else None,
    )
    for line in report.lines():
        context.log.info(line)
    return dg.Output(
        {"enabled": True, "secrets_file": report.secrets_file},
        metadata={
            "rotated": True,
            "sessions_emptied": dg.MetadataValue.json(report.sessions_emptied),
            "admins_reset": dg.MetadataValue.json(report.admins_reset),
            "secrets_file": report.secrets_file or "none (no admin password was reset)",
            "checklist": dg.MetadataValue.md("\n".join(f"- [ ] {item}" for item in report.checklist)),
            "report_json": dg.MetadataValue.json(report.to_dict()),
        },
    )


def rotation_report(result) -> rotate.RotationReport | None:
    """The report a restore run's `rotate_secrets` step recorded, or None when it did not rotate."""
    for event in result.all_events:
        if event.is_successful_output and event.step_key == ROTATE_OP:
            recorded = event.step_output_data.metadata.get("report_json")
            return rotate.RotationReport.from_dict(recorded.value) if recorded is not None else None
    return None
