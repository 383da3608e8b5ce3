"""Pull reader ceiling: how many records a second one reader reads and lands, per shard, when the
stream answers as fast as AWS does (not as moto, which bench/pull.py is bound by).

    .venv/bin/python bench/pull_reader.py [--records-per-shard 20000] [--shards 1 4] [--latency-ms 0 25]

The stream is held in memory behind the reader's stream interface (pools/pull/streams.py: shards,
iterator, page), with DynamoDB Streams' page size (PULL_PAGE_LIMIT, 1,000 records) and an optional
delay per GetRecords call standing for AWS's answer time. Everything after the page is Shoal's
real path: `read_once` → the one reading loop → `land_records` (journal file, fsync, the Delivery
row, the load message) with each shard's checkpoint in the same transaction, on this machine's
PostgreSQL-less default database (SQLite in the data folder) as `make run` has it.

Each record is a ~1 KB change record (an order), so 1,000 records/s is about 1 MB/s: AWS's write
limit of one shard. The target (issue 22): one reader keeps up with its shards at that limit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import Stack  # noqa: E402


class MemoryStream:
    """A stream of `shards` shards holding `per_shard` records each, read as the reader reads AWS."""

    def __init__(self, shards: int, per_shard: int, latency: float, page_limit: int):
        from pools.ingest.records import change_record, encode_record

        self.arn = "arn:aws:kinesis:us-east-1:000000000000:stream/bench"
        self.latency, self.limit = latency, page_limit
        pad = "x" * 700
        self.records = {
            f"shardId-{s:012d}": [
                encode_record(
                    change_record(
                        "INSERT",
                        keys={"order_id": {"S": f"o{s}-{n}"}},
                        new_image={"order_id": {"S": f"o{s}-{n}"}, "note": {"S": pad}, "qty": {"N": str(n)}},
                        event_id=f"e{s}-{n}",
                        created=1_765_000_000_000 + n,
                        table_name="orders",
                        region="us-east-1",
                    )
                )
                for n in range(per_shard)
            ]
            for s in range(shards)
        }

    def shards(self) -> list[dict]:
        return [{"ShardId": shard_id} for shard_id in self.records]

    def iterator(self, shard_id: str, after: str | None) -> str:
        return f"{shard_id}:{int(after) if after else 0}"

    def page(self, iterator: str):
        from pools.pull.streams import Page

        if self.latency:
            time.sleep(self.latency)
        shard_id, start = iterator.rsplit(":", 1)
        first = int(start)
        held = self.records[shard_id][first : first + self.limit]
        last = first + len(held)
        return Page(held, str(last) if held else None, f"{shard_id}:{last}", 0)


def run(shards: int, per_shard: int, latency_ms: float) -> dict:
    from django.conf import settings
    from django.db.models import Sum

    from pools.aws.models import AwsConnection, Pipeline
    from pools.models import Delivery
    from pools.pull.reader import read_once
    from pools.services import create_pool

    stream = MemoryStream(shards, per_shard, latency_ms / 1000, settings.PULL_PAGE_LIMIT)
    pool = create_pool(f"bench_pull_{shards}_{int(latency_ms)}_{int(time.time() * 1000) % 100000}")
    connection, _ = AwsConnection.objects.get_or_create(
        name="bench", defaults={"region": "us-east-1", "endpoint_url": "http://127.0.0.1:9"}
    )
    pipeline = Pipeline.objects.create(
        pool=pool,
        connection=connection,
        status=Pipeline.Status.ACTIVE,
        delivery_mode=Pipeline.Mode.KINESIS,
        table_name="orders",
        stream_name="bench",
        bucket_name="bench",
    )
    total, payload = shards * per_shard, sum(len(r) for rs in stream.records.values() for r in rs)
    cpu, start, landed = time.process_time(), time.perf_counter(), 0
    while landed < total:
        landed += read_once(pipeline, stream).records
    seconds = time.perf_counter() - start
    stored = Delivery.objects.filter(pool=pool).aggregate(n=Sum("record_count"))["n"]
    assert stored == total, f"{stored} records stored of {total}"  # landed, each once
    return {
        "shards": shards,
        "getrecords_latency_ms": latency_ms,
        "records": total,
        "seconds": round(seconds, 2),
        "records_per_s": round(total / seconds),
        "records_per_s_per_shard": round(total / seconds / shards),
        "mb_per_s_per_shard": round(payload / seconds / shards / 1e6, 2),
        "reader_cpu_share": round((time.process_time() - cpu) / seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records-per-shard", type=int, default=20_000)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 25.0])
    parser.add_argument("--redis-db", type=int, default=12)
    args = parser.parse_args()
    stack = Stack(redis_db=args.redis_db, prefix="shoal-bench-pull-reader-")
    stack.manage("migrate", "--noinput")
    import django

    django.setup()
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "runs": [
            run(shards, args.records_per_shard, latency)
            for latency in args.latency_ms
            for shards in args.shards
        ],
    }
    stack.remove()
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()  # the load messages nobody will take
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
