"""Which codec for `_payload` (the raw change record kept in every pool row): load time and size.

    .venv/bin/python bench/payload_codec.py [--records 200000] [--repeat 3]

Loads the same Firehose bodies with Shoal's own load statement (pools/sources/dynamodb_stream.py)
into tables that differ only in the codec of `_payload`, in an embedded warehouse of its own (a
temporary folder), and reports the best of `--repeat` runs per codec and the column's compressed size.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CODECS = ["ZSTD(3)", "ZSTD(1)", "LZ4", "NONE"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="shoal-codec-"))
    os.environ.update(SHOAL_DATA_DIR=str(folder), DJANGO_SETTINGS_MODULE="console.settings")
    import django

    django.setup()
    from console.warehouse import get_warehouse
    from pools.firehose_client import batches
    from pools.ingest.records import firehose_body
    from pools.loader import ONE_BLOCK
    from pools.samples import make_records
    from pools.sources import dynamodb_stream

    records = make_records(args.records, seed=7)
    bodies = []
    for i, batch in enumerate(batches(records, 2**20)):
        path = folder / f"body-{i}.json"
        path.write_bytes(firehose_body(f"r{i}", batch))
        bodies.append(path)
    warehouse = get_warehouse()
    columns = [(n, t) for n, t, _ in dynamodb_stream.CHANGE_EVENT_COLUMNS]
    files = [(p.name, i, int(time.time() * 1000)) for i, p in enumerate(bodies)]
    # Rounds interleave the codecs, so that a busy moment of the machine does not favour one.
    best: dict[str, float] = {}
    for attempt in range(args.repeat):
        for codec in CODECS:
            name = f"codec_{codec.replace('(', '').replace(')', '').lower()}"
            ddl = ", ".join(
                f"`{n}` {'String CODEC(' + codec + ')' if n == '_payload' else t}" for n, t in columns
            )
            warehouse.execute(f"DROP TABLE IF EXISTS {name}")
            warehouse.execute(f"CREATE TABLE {name} ({ddl}) ENGINE = MergeTree ORDER BY _received_at")
            started = time.perf_counter()
            # As the loader inserts: one reading thread, one block (pools/loader/batch.py).
            warehouse.insert_files(
                dynamodb_stream.load_select(files), name, bodies, settings={"max_threads": 1, **ONE_BLOCK}
            )
            elapsed = time.perf_counter() - started
            best[codec] = min(best.get(codec, elapsed), elapsed)
            print(attempt, codec, round(args.records / elapsed), file=sys.stderr)
    results = {}
    for codec in CODECS:
        name = f"codec_{codec.replace('(', '').replace(')', '').lower()}"
        size = warehouse.query(
            "SELECT sum(data_compressed_bytes) FROM system.columns "
            f"WHERE database = currentDatabase() AND table = '{name}' AND name = '_payload'"
        ).rows[0][0]
        results[codec] = {
            "records_per_s": round(args.records / best[codec]),
            "payload_mib": round(int(size) / 2**20, 1),
        }
    print(
        json.dumps({"records": args.records, "date": time.strftime("%Y-%m-%d"), "codecs": results}, indent=2)
    )


if __name__ == "__main__":
    main()
