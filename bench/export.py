"""Initial load from DynamoDB's export to S3: items/s Shoal loads from an export's files, against
the warehouse's own rate for the same gzip files.

    .venv/bin/python bench/export.py [--items 1000000] [--files 64]

Starts `make run`'s stack (bench/stack.py) and a moto server, writes an export of --items items in
AWS's layout (pools/aws/export_layout.py) into moto's S3, and runs the pipeline's snapshot with
method "export" in this process (as the `default` worker would) until every delivery is loaded by
the stack's warehouse worker. Then, with the stack stopped, the ceiling: chDB inserting the same
gzip files, read from a local folder, into a table of (pk, item JSON) in one INSERT … SELECT.
moto does not emulate ExportTableToPointInTime in AWS's layout: only that call and DescribeExport
are replaced here, as in tests/test_export_snapshot.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import Stack, free_port  # noqa: E402

TABLE = "bench_export"
BUCKET = "bench-exports"


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.1)
    raise SystemExit("moto did not start")


def setup_aws(stack: Stack, moto_url: str, items: int, files: int):
    """A pool, a moto connection, a table with point-in-time recovery, a bucket, a pipeline row,
    and the export written in AWS's layout; returns (pipeline, s3 client, export folder)."""
    from pools.aws import export_snapshot
    from pools.aws.clients import connect
    from pools.aws.models import AwsConnection
    from pools.models import DataPool

    pool_info = json.loads(stack.manage("create_pool", "bench_export_pool", "--json"))
    pool = DataPool.objects.get(name=pool_info["name"])
    connection = AwsConnection(
        name="bench moto",
        region="us-east-1",
        auth_method=AwsConnection.Auth.ACCESS_KEY,
        access_key_id="testing",
        endpoint_url=moto_url,
    )
    connection.set_secret_access_key("testing")
    connection.save()
    aws = connect(connection)
    ddb, s3 = aws.client("dynamodb"), aws.client("s3")
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    export_snapshot.enable_pitr(ddb, TABLE)
    s3.create_bucket(Bucket=BUCKET)
    pipeline = _pipeline(pool, connection)
    base = _write_export(s3, pipeline.table_arn, items, files)
    return pipeline, s3, base


def _pipeline(pool, connection):
    from django.utils import timezone

    from pools.aws.models import Pipeline

    return Pipeline.objects.create(
        pool=pool,
        connection=connection,
        status=Pipeline.Status.ACTIVE,
        table_name=TABLE,
        table_arn=f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}",
        stream_name="s",
        bucket_name=BUCKET,
        role_name="r",
        firehose_name="f",
        http_endpoint_name="Shoal",
        endpoint_url=pool.endpoint_url(),
        destination_enabled_at=timezone.now(),
    )


def _write_export(s3, table_arn: str, items: int, files: int) -> str:
    """The export, as AWS would have written it; the snapshot's two export calls then find it."""
    from pools.aws import export_layout, export_snapshot

    parts: list[list[dict]] = [[] for _ in range(files)]
    for n in range(items):
        parts[n % files].append(
            {
                "pk": {"S": f"order#{n:08d}"},
                "n": {"N": str(n)},
                "taqueria": {"S": "El Farolito"},
                "items": {"L": [{"M": {"name": {"S": "al pastor"}, "qty": {"N": "2"}}}]},
            }
        )
    arn = f"{table_arn}/export/01234567890123-bench"
    base = export_layout.write_export(
        s3,
        bucket=BUCKET,
        prefix="",
        export_arn=arn,
        table_arn=table_arn,
        export_time=datetime(2026, 12, 1, tzinfo=UTC),
        partitions=parts,
    )

    class Prebuilt:
        def start(self, **kwargs):
            return arn

        def describe(self, *, export_arn, bucket, prefix):
            manifest = f"{base}/manifest-summary.json"
            return {
                "ExportArn": arn,
                "ExportStatus": "COMPLETED",
                "S3Bucket": BUCKET,
                "S3Prefix": "",
                "ExportManifest": manifest,
            }

    export_snapshot.exporter_for = lambda snapshot: Prebuilt()
    return base


def shoal_load(pipeline, items: int) -> float:
    from pools.aws import snapshot as snapshots
    from pools.models import Delivery

    started = time.perf_counter()
    done = snapshots.run_snapshot(snapshots.start(pipeline, method="export").pk)
    if done.status != "done":
        raise SystemExit(f"the snapshot ended {done.status}: {done.error}")
    while Delivery.objects.filter(pool=pipeline.pool).exclude(status="loaded").exists():
        time.sleep(0.2)
    return time.perf_counter() - started


def ceiling(s3, base: str, items: int) -> float:
    import chdb

    folder = Path(tempfile.mkdtemp(prefix="shoal-bench-export-files-"))
    for obj in s3.list_objects_v2(Bucket=BUCKET, Prefix=base + "/data/", MaxKeys=1000)["Contents"]:
        (folder / Path(obj["Key"]).name).write_bytes(
            s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
        )
    local = chdb.connect(str(folder / "db"))
    local.query("CREATE TABLE t (pk String, item JSON) ENGINE = MergeTree ORDER BY pk")
    started = time.perf_counter()
    local.query(
        "INSERT INTO t SELECT JSONExtractString(line, 'Item', 'pk', 'S'), JSONExtractRaw(line, 'Item') "
        f"FROM file('{folder}/*.json.gz', 'LineAsString', 'line String') WHERE line != ''"
    )
    seconds = time.perf_counter() - started
    loaded = int(local.query("SELECT count() FROM t", "CSV").bytes())
    if loaded != items:
        raise SystemExit(f"the ceiling loaded {loaded} items")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=64)
    parser.add_argument("--redis-db", type=int, default=5)
    args = parser.parse_args()
    os.environ["AWS_ALLOW_EMULATOR"] = "1"
    moto, moto_url = start_moto()
    stack = Stack(redis_db=args.redis_db, prefix="shoal-bench-export-", env={"AWS_ALLOW_EMULATOR": "1"})
    try:
        with stack:
            import django

            django.setup()
            pipeline, s3, base = setup_aws(stack, moto_url, args.items, args.files)
            seconds = shoal_load(pipeline, args.items)
        own = ceiling(s3, base, args.items)
    finally:
        moto.terminate()
    print(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}",
                "load_average": os.getloadavg(),
                "items": args.items,
                "files": args.files,
                "shoal_seconds": round(seconds, 1),
                "shoal_items_per_s": round(args.items / seconds),
                "warehouse_own_seconds": round(own, 2),
                "warehouse_own_items_per_s": round(args.items / own),
                "ratio": round(own / seconds, 2),
            },
            indent=2,
        )
    )
    stack.remove()


if __name__ == "__main__":
    main()
