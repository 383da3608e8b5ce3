"""Pull benchmark: DynamoDB Streams pull, moto's stream → `make run`'s reader → rows queryable.

    AWS_ALLOW_EMULATOR=true .venv/bin/python bench/pull.py [--records 20000] [--rate 100] [--seconds 20]

Starts a moto server and the same processes as `make run` (with the `reader`), connects a pool
through the DynamoDB Streams pull provisioning, then measures:

(a) the reader's throughput: `--records` changes are written while the pipeline is paused, then
    it is made active and timed until every record is landed, and until every record is loaded;
(b) change → queryable at `--rate` changes a second (10 % of a shard's 1,000 writes/s): for each
    change, the time from its write to the moment its delivery was loaded (the rows are queryable
    a moment before), p50 and p95.

moto serves the stream, so (a) measures Shoal's reader and moto together; AWS allows 5 GetRecords
calls a second per shard, each up to 1,000 records (or 1 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["AWS_ALLOW_EMULATOR"] = "true"

from bench.stack import Stack, free_port, wait_http  # noqa: E402
from pools.firehose_replay import percentile  # noqa: E402

TABLE = "bench_pull_orders"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--redis-db", type=int, default=12)
    args = parser.parse_args()
    port = free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    result: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average_before": os.getloadavg()[0],
    }
    try:
        wait_http(f"http://127.0.0.1:{port}/moto-api/")
        stack = Stack(redis_db=args.redis_db, prefix="shoal-bench-pull-")
        with stack:
            import django

            django.setup()
            pipeline, aws = connect(stack, f"http://127.0.0.1:{port}")
            result["throughput"] = throughput(pipeline, aws, args.records)
            result["freshness"] = freshness(pipeline, aws, args.rate, args.seconds)
        stack.remove()
    finally:
        moto.terminate()
        moto.wait(10)
    print(json.dumps(result, indent=2))


def connect(stack: Stack, moto_url: str):
    """A pool connected through DynamoDB Streams pull, as the wizard would (provisioned here)."""
    from pools.aws import pipelines, sandbox
    from pools.aws.clients import connect as aws_for
    from pools.aws.models import Pipeline, PipelineStep
    from pools.models import DataPool

    connection = sandbox.ensure_connection(moto_url)
    aws = aws_for(connection)
    sandbox.create_orders_table(aws, TABLE, items=0)
    pool = DataPool.objects.get(pk=json.loads(stack.manage("create_pool", "bench_pulled", "--json"))["id"])
    pipeline = pipelines.create_pipeline(
        pool, connection, table_name=TABLE, delivery_mode=Pipeline.Mode.STREAMS, start=False
    )
    assert pipelines.run_inline(pipeline, PipelineStep.Phase.PROVISION, aws=aws) == "active"
    return pipeline, aws


def _put(aws, n: int, start: int) -> dict[str, float]:
    """n orders written with BatchWriteItem; {order_id: when written}."""
    from pools.aws import sandbox

    written: dict[str, float] = {}
    ddb = aws.client("dynamodb")
    for first in range(0, n, 25):
        items = []
        for i in range(first, min(n, first + 25)):
            item = sandbox.sample_order()
            item["order_id"] = {"S": f"bench-{start + i:08d}"}
            items.append({"PutRequest": {"Item": item}})
        ddb.batch_write_item(RequestItems={TABLE: items})
        now = time.time()
        written.update({r["PutRequest"]["Item"]["order_id"]["S"]: now for r in items})
    return written


def throughput(pipeline, aws, records: int) -> dict:
    from pools.aws.models import Pipeline
    from pools.models import DataPool, Delivery

    Pipeline.objects.filter(pk=pipeline.pk).update(status=Pipeline.Status.FAILED)  # paused
    _put(aws, records, 0)
    started = time.time()
    Pipeline.objects.filter(pk=pipeline.pk).update(status=Pipeline.Status.ACTIVE)
    landed = loaded = None
    while loaded is None and time.time() - started < 600:
        total = sum(Delivery.objects.filter(pool=pipeline.pool).values_list("record_count", flat=True))
        if landed is None and total >= records:
            landed = time.time() - started
        if DataPool.objects.get(pk=pipeline.pool_id).record_count >= records:
            loaded = time.time() - started
        time.sleep(0.05)
    return {
        "records": records,
        "shards": 1,
        "landed_records_per_s": round(records / landed) if landed else None,
        "loaded_records_per_s": round(records / loaded) if loaded else None,
    }


def freshness(pipeline, aws, rate: float, seconds: float) -> dict:
    from console import warehouse_client
    from console.tasks import run_sql
    from pools.models import DataPool, Delivery

    before = DataPool.objects.get(pk=pipeline.pool_id).record_count
    written: dict[str, float] = {}
    started, n = time.time(), 0
    while time.time() - started < seconds:
        written.update(_put(aws, 1, 10_000_000 + n))
        n += 1
        time.sleep(max(0.0, started + n / rate - time.time()))
    while DataPool.objects.get(pk=pipeline.pool_id).record_count < before + n:
        time.sleep(0.1)
    loaded_at = {
        d.pk: d.loaded_at.timestamp()
        for d in Delivery.objects.filter(pool=pipeline.pool, loaded_at__isnull=False)
    }
    rows = warehouse_client.call(
        run_sql,
        f"SELECT _delivery_id, keys.order_id.S FROM {pipeline.pool.name} WHERE keys.order_id.S >= 'bench-1'",
    )["rows"]
    lags = [loaded_at[int(d)] - written[o] for d, o in rows if o in written and int(d) in loaded_at]
    return {
        "rate_per_s": rate,
        "changes": n,
        "change_to_queryable_p50_s": round(percentile(lags, 50), 3),
        "change_to_queryable_p95_s": round(percentile(lags, 95), 3),
    }


if __name__ == "__main__":
    main()
