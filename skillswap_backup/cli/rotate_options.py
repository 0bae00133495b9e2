"""`restore --rotate-secrets`: the options, their run config for the job's `rotate_secrets` step,
and what is printed afterwards (never a password: those are only in the 0600 file)."""

from __future__ import annotations

from pathlib import Path

from ..defs.restore.rotate import ROTATE_OP, rotation_report
from ..lib import rotate
from . import errors
from .errors import CommandFailed

errors.register(rotate.RotateError)


def add_arguments(parser) -> None:
    group = parser.add_argument_group("after the restore")
    group.add_argument(
        "--rotate-secrets", action="store_true",
        help="empty session tables, reset admin passwords (the new ones go to a 0600 file, never printed), "
        "and list the app secrets to regenerate",
    )
    group.add_argument(
        "--password-scheme", choices=("bcrypt", "scrypt"),
        help="hash format of the new admin passwords (default: the one the app stores, else bcrypt; "
        "scrypt is passport-local's hex.salt)",
    )
    group.add_argument("--secrets-file", metavar="PATH", help=f"where the new admin passwords go (default: {rotate.DEFAULT_SECRETS_DIR}/…)")


def run_config(args) -> dict:
    """Run config of the `rotate_secrets` step ({} leaves it off)."""
    if not args.rotate_secrets:
        if args.password_scheme or args.secrets_file:
            raise CommandFailed("--password-scheme and --secrets-file go with --rotate-secrets")
        return {}
    secrets_file = str(Path(args.secrets_file).expanduser().resolve()) if args.secrets_file else None
    if secrets_file and Path(secrets_file).exists():
        raise CommandFailed(f"{secrets_file} already exists; pass another --secrets-file (an existing file is never overwritten)")
    config = {"enabled": True, "password_scheme": args.password_scheme or "detect", "secrets_file": secrets_file}
    return {ROTATE_OP: {"config": config}}


def print_report(result) -> None:
    report = rotation_report(result)
    if report is not None:
        for line in report.lines():
            print(line)
