"""`report`: a snapshot's data-quality summary (from reports/quality.json) and its HTML report.

Reading a report needs no key: reports are stored in plaintext beside the manifest. The exit
code is 0 whenever a report could be read, restorable or not (a failed snapshot is said loudly
on the first line); a snapshot without a report is one line on stderr and exit 1.
"""

from __future__ import annotations

from ...lib import manifest as manifest_lib
from ...lib import restore_quality, settings, verify
from ...lib.quality.publish import DATA_DOCS_INDEX, QUALITY_JSON, load_results
from ...lib.quality.results import text_summary
from ...lib.storage import SnapshotStore
from ..common import add_snapshot_arg, requested_snapshot
from ..errors import CommandFailed


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="print a snapshot's data-quality summary and where its HTML report (Data Docs) is",
        description="Per table: checks passed/failed, row counts, offending keys; the verdict (restorable or not) "
        "and the path of the Great Expectations Data Docs.",
    )
    add_snapshot_arg(parser)
    parser.set_defaults(handler=run)


def run(args) -> int:
    root = settings.backup_root()
    key = verify.resolve_snapshot(root, requested_snapshot(args))
    # Reports and the manifest are plaintext: no encryption config is needed to read them.
    store = SnapshotStore(root, key)
    body = manifest_lib.read_manifest(store)
    if not store.exists(QUALITY_JSON):
        raise CommandFailed(
            f"snapshot {key} has no data-quality report yet (its checks have not run, e.g. an encrypted backup "
            f"without BACKUP_AGE_IDENTITY); run them with `skillswap-backup backup --partition {key}`"
        )
    report = store.read_json(QUALITY_JSON)
    results = load_results(store)
    verdict = body.get("quality") or {}
    restorable = report.get("restorable", verdict.get("restorable"))
    if restorable is False:
        failed = "; ".join(f"{table}: {', '.join(families)}" for table, families in report.get("failed", {}).items())
        print(f"SNAPSHOT {key} IS NOT RESTORABLE — blocking data-quality checks failed ({failed}); "
              "`restore` refuses it unless --force")
    else:
        status = verdict.get("status") or ("passed" if not report.get("failed") else "warnings")
        print(f"snapshot {key}: data quality {status}, restorable")
    print(text_summary(results))
    print(f"checked at {report.get('updated_at', '?')}")
    print(f"HTML report (Great Expectations Data Docs): {store.url(DATA_DOCS_INDEX)}")
    print(f"results as JSON: {store.url(QUALITY_JSON)}")
    for index in restore_quality.restore_reports(store):
        print(f"restore report: {index}")
    return 0
