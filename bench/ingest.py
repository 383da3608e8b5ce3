"""Ingest benchmark: Firehose deliveries → `make run`'s stack → rows queryable in the warehouse.

    .venv/bin/python bench/ingest.py [--records 300000] [--concurrency 8] [--buffer-mib 1]

Starts the same processes as `make run` (gunicorn web, warehouse worker, default worker, beat) on
a free port, with their own data folder and Redis database, creates a pool, sends realistic
DynamoDB change records as Amazon Data Firehose would (1 MiB batches, 8 deliveries in flight),
and waits until every record is in the warehouse. Then, with the stack stopped, it inserts the
same records straight into the warehouse in one statement: the ceiling.

Freshness is measured per delivery as loaded_at − received_at from Django's database: the row is
queryable a moment before loaded_at is written and the 200 goes out a moment after received_at,
so the figure is an upper bound of "acknowledged → visible".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import Stack  # noqa: E402
from pools.firehose_client import FirehoseSender, batches, percentile  # noqa: E402
from pools.samples import make_records  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--buffer-mib", type=float, default=1.0)
    parser.add_argument("--redis-db", type=int, default=13)
    parser.add_argument("--keep", action="store_true", help="keep the data folder")
    args = parser.parse_args()

    print(f"generating {args.records:,} records…", file=sys.stderr)
    records = make_records(args.records, seed=7)
    raw_mib = sum(len(r) for r in records) / 2**20
    stack = Stack(redis_db=args.redis_db)
    data_dir = stack.data_dir
    with stack:
        out = stack.manage("create_pool", "bench_orders", "--json")
        pool = json.loads(out)
        time.sleep(1.0)  # let the warehouse create the table

        import django

        django.setup()
        from pools.models import DataPool, Delivery

        # Encode every request first, so that the load generator spends the measured time on
        # HTTP only: Firehose's own work happens on AWS, not on Shoal's machine.
        sender = FirehoseSender(pool["endpoint_url"], pool["access_key"])
        prepared = [sender.prepare(b) for b in batches(records, int(args.buffer_mib * 2**20))]
        print(
            f"sending {raw_mib:.1f} MiB in {len(prepared)} requests, {args.concurrency} at a time…",
            file=sys.stderr,
        )
        started = time.time()
        with ThreadPoolExecutor(args.concurrency) as executor:
            results = list(executor.map(sender.send_prepared, prepared))
        sent = time.time()
        sender.close()
        failed = [r for r in results if not r.ok]
        if failed:
            raise SystemExit(f"{len(failed)} batches failed: {failed[0].error}")
        acks = [r.latency_s * 1000 for r in results]
        while DataPool.objects.get(pk=pool["id"]).record_count < args.records:
            if time.time() - sent > 300:
                raise SystemExit("not all records were loaded within 5 minutes")
            time.sleep(0.05)
        visible = time.time()
        check = stack.manage("sql", "SELECT count() FROM bench_orders", "--format", "json")
        counted = json.loads(check)["rows"][0][0]
        fresh = [
            (d.loaded_at - d.received_at).total_seconds()
            for d in Delivery.objects.filter(pool_id=pool["id"]).only("loaded_at", "received_at")
        ]

    ceiling = measure_ceiling(records, data_dir)
    end_to_end = args.records / (visible - started)
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "records": args.records,
        "raw_mib": round(raw_mib, 1),
        "avg_record_bytes": round(raw_mib * 2**20 / args.records),
        "batches": len(results),
        "concurrency": args.concurrency,
        "send_records_per_s": round(args.records / (sent - started)),
        "end_to_end_records_per_s": round(end_to_end),
        "end_to_end_mib_per_s": round(raw_mib / (visible - started), 2),
        "attempts": sum(r.attempts for r in results),
        "ack_p50_ms": round(percentile(acks, 50), 1),
        "ack_p99_ms": round(percentile(acks, 99), 1),
        "freshness_p50_s": round(percentile(fresh, 50), 3),
        "freshness_p95_s": round(percentile(fresh, 95), 3),
        "rows_counted": counted,
        "ceiling_records_per_s": round(ceiling),
        "ratio_to_ceiling": round(end_to_end / ceiling, 2),
    }
    print(json.dumps(result, indent=2))
    if not args.keep:
        stack.remove()


def measure_ceiling(records: list[bytes], data_dir: Path) -> float:
    """The same records and the same extraction, in one INSERT, with nothing else running."""
    import base64

    from console.warehouse import get_warehouse
    from pools import tables
    from pools.models import DataPool

    body = data_dir / "ceiling.json"
    with body.open("wb") as f:
        f.write(b'{"requestId":"ceiling","records":[')
        f.write(b",".join(b'{"data":"' + base64.b64encode(r) + b'"}' for r in records))
        f.write(b"]}")
    warehouse = get_warehouse()
    pool = DataPool(name="bench_ceiling")
    warehouse.execute(tables.create_change_event_table(pool))
    started = time.perf_counter()
    files = [(body.name, 0, int(time.time() * 1000))]
    written = warehouse.insert_files(tables.load_select(files), pool.table, [body])
    elapsed = time.perf_counter() - started
    assert written == len(records), (written, len(records))
    return len(records) / elapsed


if __name__ == "__main__":
    main()
