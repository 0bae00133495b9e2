"""`skillswap-backup`: a thin command line over the Dagster assets and jobs.

Each command lives in its own module with `add_parser(subparsers)`; the handler it sets returns
an exit code. Known errors print as one line on stderr with exit code 1, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def build_parser() -> argparse.ArgumentParser:
    from .commands import COMMAND_MODULES

    parser = argparse.ArgumentParser(
        prog="skillswap-backup",
        description="Back up a PostgreSQL database as Dagster assets, check it, restore it verified.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from . import errors

    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except errors.KNOWN_ERRORS as error:
        print(f"skillswap-backup {args.command}: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        from ..lib import settings, storage

        # An object store can fail on any read or write (unreachable, credentials refused).
        if (explained := storage.explain(error, settings.backup_root())) is None:
            raise
        print(f"skillswap-backup {args.command}: {explained}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"skillswap-backup {args.command}: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """The `skillswap-backup` console script: `main`, then leave without the interpreter's
    teardown, which spends ~0.4 s destroying Dagster's, Arrow's and SQLAlchemy's objects after
    every command (a twelfth of a 2M-row restore). What the command opened is closed first: the
    Dagster instance's connection pool here, everything else by the command itself."""
    from ..lib.quality import worker

    if sys.argv[1:2] == ["backup"]:
        # The run validates its tables in a process that first spends ~1.5 CPU-seconds importing
        # Great Expectations: started now, it does so on the core this process leaves idle while
        # it imports Dagster, instead of beside the table reads. The run takes it over.
        worker.start_early()
    from .common import close_instances

    try:
        code = main()
    finally:
        if (unused := worker.take_early()) is not None:  # the command failed before its run
            unused.close()
        close_instances()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
