"""The floor under our backup: read every table of the catalog through ADBC inside one exported
snapshot and write it to zstd Parquet, with nothing else — no Dagster, no JSON, no checksums, no
checks, no pg_dump. `bench/run.py` times it beside `pg_dump -Fc` and the whole backup, so the
share of the backup that is its irreducible data path is measured, not assumed.

Run as `python bench/floor.py OUT_FOLDER` with DATABASE_URL and BACKUP_CATALOG set.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pyarrow.parquet as pq

from skillswap_backup.lib import backup, pg, pgtypes
from skillswap_backup.lib.catalog import load_catalog
from skillswap_backup.lib.table_reader import SnapshotReader


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    url = os.environ["DATABASE_URL"]
    catalog = load_catalog(Path(os.environ["BACKUP_CATALOG"]))
    rows = 0
    with pg.connect(url, purpose="source database", autocommit=True) as conn:
        reader = SnapshotReader(url, backup.begin_snapshot(conn))
        try:
            for table in catalog.tables:
                schema = pgtypes.arrow_schema(table)
                # The backup's Parquet settings (see lib/backup.py): zstd, no dictionary pages.
                with pq.ParquetWriter(out / f"{table.file_stem}.parquet", schema, compression="zstd", use_dictionary=False) as writer:
                    for batch in reader.batches(table):
                        writer.write_batch(batch)
                        rows += batch.num_rows
        finally:
            reader.close()
    print(f"{rows} rows in {len(catalog.tables)} tables")


if __name__ == "__main__":
    main()
