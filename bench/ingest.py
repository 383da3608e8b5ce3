"""Ingest benchmark: Firehose deliveries → `make run`'s stack → rows queryable in the warehouse.

    .venv/bin/python bench/ingest.py [--records 300000] [--concurrency 8] [--buffer-mib 1]

Starts the same processes as `make run` (gunicorn web, warehouse worker, default worker, beat) on
a free port, with their own data folder and Redis database, and in one run measures:

(a) a plain pool: the records sent as Amazon Data Firehose would (1 MiB requests, 8 in flight,
    Firehose's retries), until every record is queryable in the pool;
(b) a pool with the guide's Step 4 SQL attached as a Mutable Materialized View (default
    versioning), until every record is in the pool and has run through the view (a delivery is
    `loaded` only after its views ran);
(c) freshness at about 10 % of (a)'s rate;
then, with the stack stopped, the ceilings: the same change records, one JSON per line, inserted
by one `INSERT … SELECT` from `file(…, LineAsString)` with the extraction done by the engine into a
table with the pool's columns; and the same Firehose bodies through Shoal's own load statement in
one INSERT (the earlier ceiling).

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

from bench.stack import Stack, guide_sql  # noqa: E402
from pools.firehose_client import FirehoseSender, batches  # noqa: E402
from pools.firehose_replay import percentile  # noqa: E402
from pools.ingest.records import firehose_body  # noqa: E402
from pools.samples import make_records  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--buffer-mib", type=float, default=1.0)
    parser.add_argument("--light-seconds", type=float, default=30.0, help="duration of (c)")
    parser.add_argument("--redis-db", type=int, default=13)
    parser.add_argument("--keep", action="store_true", help="keep the data folder")
    parser.add_argument("--plain-only", action="store_true", help="only (a) and the ceilings")
    args = parser.parse_args()

    print(f"generating {args.records:,} records…", file=sys.stderr)
    records = make_records(args.records, seed=7)
    raw_mib = sum(len(r) for r in records) / 2**20
    stack = Stack(redis_db=args.redis_db)
    data_dir = stack.data_dir
    result: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average_before": os.getloadavg()[0],
        "records": args.records,
        "raw_mib": round(raw_mib, 1),
        "concurrency": args.concurrency,
    }
    with stack:
        plain = json.loads(stack.manage("create_pool", "bench_orders", "--json"))
        viewed = json.loads(stack.manage("create_pool", "bench_orders_mv", "--json"))
        time.sleep(1.0)  # let the warehouse create the tables
        sql_file = data_dir / "step4.sql"
        sql_file.write_text(guide_sql("bench_orders_mv"))
        stack.manage(
            "create_mv", "bench_flattened", "--sql-file", str(sql_file), "--target-pool", "bench_entities",
            "--mutable", "--unique", "order_id", "--time", "timestamp",
        )  # fmt: skip

        import django

        django.setup()
        warmup = json.loads(stack.manage("create_pool", "bench_warmup", "--json"))
        send_all(warmup, records[:5000], args, stack)  # first requests pay for imports and connections
        result["plain"] = send_all(plain, records, args, stack)
        if not args.plain_only:
            result["with_view"] = send_all(viewed, records, args, stack)
        rate = result["plain"]["records_per_s"] * 0.1
        result["light_load"] = send_lightly(plain, records, args, rate)
        from console import warehouse_client
        from pools.tasks import warehouse_active_parts

        result["active_parts"] = warehouse_client.call(warehouse_active_parts)
    result["ceiling_lines_records_per_s"] = round(ceiling_from_lines(records, data_dir))
    result["ceiling_bodies_records_per_s"] = round(ceiling_from_bodies(records, data_dir))
    for run in ("plain",) if args.plain_only else ("plain", "with_view"):
        result[run]["ratio_to_line_ceiling"] = round(
            result[run]["records_per_s"] / result["ceiling_lines_records_per_s"], 2
        )
    result["load_average_after"] = os.getloadavg()[0]
    print(json.dumps(result, indent=2))
    if not args.keep:
        stack.remove()


def send_all(pool: dict, records: list[bytes], args, stack: Stack) -> dict:
    """Send every record to a pool, 8 requests in flight; wait until all are loaded."""
    from pools.models import DataPool, Delivery

    # Encode every request first, so that the load generator spends the measured time on
    # HTTP only: Firehose's own work happens on AWS, not on Shoal's machine.
    sender = FirehoseSender(pool["endpoint_url"], pool["access_key"])
    prepared = [sender.prepare(b) for b in batches(records, int(args.buffer_mib * 2**20))]
    print(f"{pool['name']}: {len(prepared)} requests, {args.concurrency} at a time…", file=sys.stderr)
    started, cpu_before, own_before = time.time(), stack.cpu_seconds(), os.times()
    with ThreadPoolExecutor(args.concurrency) as executor:
        results = list(executor.map(sender.send_prepared, prepared))
    sender.close()
    failed = [r for r in results if not r.ok]
    if failed:
        raise SystemExit(f"{len(failed)} batches failed: {failed[0].error}")
    while DataPool.objects.get(pk=pool["id"]).record_count < len(records):
        if time.time() - started > 900:
            raise SystemExit("not all records were loaded within 15 minutes")
        time.sleep(0.05)
    visible, cpu_after, own_after = time.time(), stack.cpu_seconds(), os.times()
    cpu = {role: round(cpu_after[role] - cpu_before.get(role, 0.0), 1) for role in cpu_after}
    cpu["sender (this process)"] = round(
        own_after.user + own_after.system - own_before.user - own_before.system, 1
    )
    deliveries = Delivery.objects.filter(pool_id=pool["id"])
    fresh = [
        (d.loaded_at - d.received_at).total_seconds() for d in deliveries.only("loaded_at", "received_at")
    ]
    acks = [r.latency_s * 1000 for r in results]
    return {
        "records_per_s": round(len(records) / (visible - started)),
        "requests": len(results),
        "attempts": sum(r.attempts for r in results),
        "ack_p50_ms": round(percentile(acks, 50), 1),
        "ack_p99_ms": round(percentile(acks, 99), 1),
        "freshness_p50_s": round(percentile(fresh, 50), 3),
        "freshness_p95_s": round(percentile(fresh, 95), 3),
        "load_batches": deliveries.values("batch_id").distinct().count(),
        "seconds": round(visible - started, 1),
        "cpu_seconds": cpu,
    }


def send_lightly(pool: dict, records: list[bytes], args, rate: float) -> dict:
    """Freshness at a light load: one request at a time, paced to about `rate` records/s."""
    from pools.models import Delivery

    sender = FirehoseSender(pool["endpoint_url"], pool["access_key"])
    first = Delivery.objects.filter(pool_id=pool["id"]).order_by("-id").values_list("id", flat=True).first()
    groups = list(batches(records, int(args.buffer_mib * 2**20)))
    interval = len(groups[0]) / rate
    started, sent = time.time(), 0
    while time.time() - started < args.light_seconds:
        sender.send(groups[sent % len(groups)])  # a new request id each time: a new delivery
        sent += 1
        time.sleep(max(0.0, started + sent * interval - time.time()))
    sender.close()
    time.sleep(3)
    deliveries = Delivery.objects.filter(pool_id=pool["id"], id__gt=first or 0, loaded_at__isnull=False)
    fresh = [
        (d.loaded_at - d.received_at).total_seconds() for d in deliveries.only("loaded_at", "received_at")
    ]
    return {
        "records_per_s": round(rate),
        "requests": sent,
        "freshness_p50_s": round(percentile(fresh, 50), 3),
        "freshness_p95_s": round(percentile(fresh, 95), 3),
    }


def ceiling_from_lines(records: list[bytes], data_dir: Path) -> float:
    """The change records, one JSON per line, into a table with the pool's columns by one
    INSERT … SELECT from file(…, LineAsString), the engine extracting the columns."""
    from console.warehouse import get_warehouse
    from pools import tables
    from pools.models import DataPool
    from pools.sources import dynamodb_stream

    path = data_dir / "changes.jsonl"
    path.write_bytes(b"\n".join(records) + b"\n")
    warehouse = get_warehouse()
    pool = DataPool(name="bench_ceiling_lines")
    warehouse.execute(tables.create_change_event_table(pool))
    image = "if(startsWith({0}, '{{'), {0}, '{{}}')"
    extract = f"""SELECT s.1, s.2, s.3, s.4, s.5, s.6, {image.format("JSONExtractRaw(r, 'userIdentity')")},
        s.7.1, s.7.2, d['Keys'], {image.format("d['NewImage']")}, {image.format("d['OldImage']")},
        s.7.3, now64(3), toUInt64(0), r
    FROM (SELECT line AS r, JSONExtract(r, '{dynamodb_stream._SCALARS}') AS s,
            CAST(JSONExtractKeysAndValuesRaw(r, 'dynamodb'), 'Map(String, String)') AS d
          FROM file('{path}', 'LineAsString'))"""
    started = time.perf_counter()
    warehouse.execute(f"INSERT INTO {pool.table} {extract}")
    elapsed = time.perf_counter() - started
    counted = warehouse.query(f"SELECT count() FROM {pool.table}").rows[0][0]
    assert counted == len(records), (counted, len(records))
    return len(records) / elapsed


def ceiling_from_bodies(records: list[bytes], data_dir: Path) -> float:
    """The same records as 1 MiB Firehose bodies, through Shoal's load statement, in one INSERT."""
    from console.warehouse import get_warehouse
    from pools import tables
    from pools.models import DataPool
    from pools.sources import dynamodb_stream

    paths = []
    for i, batch in enumerate(batches(records, 2**20)):
        path = data_dir / f"ceiling-{i}.json"
        path.write_bytes(firehose_body(f"c{i}", batch))
        paths.append(path)
    warehouse = get_warehouse()
    pool = DataPool(name="bench_ceiling_bodies")
    warehouse.execute(tables.create_change_event_table(pool))
    files = [(p.name, i, int(time.time() * 1000)) for i, p in enumerate(paths)]
    started = time.perf_counter()
    written = warehouse.insert_files(dynamodb_stream.load_select(files), pool.table, paths)
    elapsed = time.perf_counter() - started
    assert written == len(records), (written, len(records))
    return len(records) / elapsed


if __name__ == "__main__":
    main()
