"""`backup`: materialize every table asset of one snapshot partition through the Dagster instance."""

from __future__ import annotations

import os

from ...lib import backup as backup_lib
from ...lib import copies, manifest, pg, settings
from ...lib.storage import SnapshotStore
from ..common import add_source_args, catalog_or_discover, dagster_instance, use_source_url
from ..errors import CommandFailed
from ..runs import launch
from .copy import copy_and_report


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("backup", help="back up every table for the current (or given) partition")
    add_source_args(parser)
    parser.add_argument(
        "--snapshot", "--partition", dest="partition", metavar="KEY",
        help="snapshot partition key to write (default: the current window)",
    )
    parser.add_argument("--anonymize", action="store_true", help="apply the PII rules to the JSON exports")
    parser.set_defaults(handler=run)


def _preflight(url: str, catalog, store: SnapshotStore, copy_roots: list[str]) -> None:
    """Fail before launching a run when the source or storage is plainly unusable."""
    copies.destinations(store.root, copy_roots)  # a copy "to" BACKUP_ROOT itself
    with pg.connect(url, purpose="source database") as conn:
        for table in catalog.tables:
            backup_lib.check_drift(conn, table)
    store.ensure_writable()


def pick_partition(requested: str | None) -> str:
    from ...defs.partitions import current_partition_key, snapshot_partitions

    partitions = snapshot_partitions()
    if requested is None:
        return current_partition_key(partitions)
    if not partitions.has_partition_key(requested):
        raise CommandFailed(
            f"{requested!r} is not a snapshot partition (keys look like {current_partition_key(partitions)}); "
            "see `skillswap-backup list` or the Dagster UI"
        )
    return requested


def run(args) -> int:
    url = use_source_url(args)
    if args.anonymize:
        os.environ["BACKUP_ANONYMIZE"] = "1"
    catalog = catalog_or_discover(url)
    key = pick_partition(args.partition)
    store = SnapshotStore(settings.backup_root(), key)
    copy_roots = settings.copy_roots()
    _preflight(url, catalog, store, copy_roots)
    instance = dagster_instance()
    print(f"backing up {catalog.database} ({len(catalog.tables)} tables) into snapshot {key} at {store.url()}")
    tags = {"dagster/partition": key}
    if copy_roots:
        from ...defs.lifecycle.copies import COPIED_BY_CLI_TAG

        tags[COPIED_BY_CLI_TAG] = "true"  # the copy sensor leaves this run's copies to us
    result = launch("backup", instance=instance, tags=tags, what=f"backup of {key}")
    body = manifest.read_manifest(SnapshotStore(settings.backup_root(), key))
    print_summary(body, store)
    failures = copy_and_report(store, copy_roots)
    print(f"run {result.run_id} is in the Dagster UI (dagster dev -w workspace.yaml)")
    if failures:
        raise CommandFailed(
            f"snapshot {key} is complete in BACKUP_ROOT, but " + "; ".join(failures)
            + f"; run `skillswap-backup copy {key}` to try again"
        )
    return 0


def print_summary(body: dict, store: SnapshotStore) -> None:
    total_rows = total_bytes = 0
    sizes: dict[str, int] = {}
    for f in body["files"]:
        sizes[f["path"]] = f["bytes"]
    print(f"{'table':40} {'rows':>10} {'bytes':>12}")
    for name, table in body["tables"].items():
        size = sum(sizes.get(p, 0) for p in table["files"])
        total_rows += table["rows"]
        total_bytes += size
        print(f"{name:40} {table['rows']:>10} {size:>12}")
    print(f"{'total: ' + str(len(body['tables'])) + ' tables':40} {total_rows:>10} {total_bytes:>12}")
    print(f"snapshot {body['partition_key']}: {len(body['files'])} files in {store.url()}")
    print(f"  Parquet (full fidelity{', encrypted' if body['encrypted'] else ''}): {store.url('tables')}")
    print(f"  JSON (sanitized{', encrypted' if body['encrypted'] else ''}): {store.url('json')}")
    print(f"  manifest: {store.url('manifest.json')}")
    if body["encrypted"]:
        biggest = sorted(body["tables"].values(), key=lambda t: -t["rows"])
        sample = next((p for t in biggest for p in t["files"] if p.endswith(".parquet.age")), None)
        key = os.environ.get("BACKUP_AGE_IDENTITY") or "backup-key.txt"
        if sample:
            print(f"  decrypt any file with age: age -d -i {key} {store.url(sample)} > {sample.rsplit('/', 2)[-2]}.parquet")
    for finding in body.get("findings", []):
        print(f"security finding: {finding['message']}")
