"""The local sandbox (`make demo`): a moto server stands in for AWS, and a relay stands in for what
moto cannot do.

moto creates every resource the pipeline needs, but moves no data: DynamoDB never writes to Kinesis
(EnableKinesisStreamingDestination is not implemented) and Firehose never reads Kinesis. The relay
does that part, clearly labelled as the sandbox's: it reads the table's DynamoDB stream
(dynamodbstreams GetRecords), turns each record into the shape Kinesis Data Streams for DynamoDB
writes (pools/ingest/records.py), and delivers batches to the pool's endpoint in the Firehose
HTTP format (pools.firehose_client.FirehoseSender: same headers, access key, retries), as the real
Firehose stream would. Only pipelines of connections with an endpoint URL (an emulator) are relayed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime

import redis
from botocore.exceptions import ClientError
from django.conf import settings

from pools.aws.clients import Aws, connect
from pools.aws.errors import error_code
from pools.aws.models import AwsConnection, Pipeline, SandboxRelay
from pools.firehose_client import FirehoseSender, batches
from pools.ingest.records import epoch
from pools.pull.reader import Position, advance, shard_pages
from pools.pull.streams import DynamoDBStream
from pools.reading import Batch, land_batches
from pools.samples import MENU, NAMES, STATUSES, TAQUERIAS

log = logging.getLogger(__name__)

CONNECTION_NAME = "Local sandbox (moto)"
ORDERS_TABLE = "orders"
DEMO_POOL = "my_dynamo_orders_change_events"
DUMMY_KEY = "testing"
HEARTBEAT_KEY = "shoal:sandbox-relay:heartbeat"
HEARTBEAT_TTL = 10


# --- Setting the sandbox up ---------------------------------------------------------------------


def ensure_connection(endpoint_url: str, region: str = "us-east-1") -> AwsConnection:
    """The sandbox's AWS connection: the moto server, with moto's dummy credentials."""
    connection, _ = AwsConnection.objects.get_or_create(
        name=CONNECTION_NAME,
        defaults={"region": region, "auth_method": AwsConnection.Auth.ACCESS_KEY},
    )
    connection.region = region
    connection.auth_method = AwsConnection.Auth.ACCESS_KEY
    connection.access_key_id = DUMMY_KEY
    connection.set_secret_access_key(DUMMY_KEY)
    connection.endpoint_url = endpoint_url.rstrip("/")
    connection.save()
    return connection


def sample_order(rng: random.Random | None = None) -> dict:
    """An order of the guide's taqueria table, in DynamoDB JSON."""
    rng = rng or random.Random()
    now = datetime.now(UTC)
    lines = rng.sample(MENU, rng.choice((1, 1, 2, 3)))
    items, quantity, cents = [], 0, 0
    for name, price in lines:
        qty = rng.choice((1, 1, 2, 3))
        quantity += qty
        cents += qty * price
        items.append({"M": {"name": {"S": name}, "qty": {"N": str(qty)}}})
    return {
        "order_id": {"S": f"order-{rng.getrandbits(24):06x}"},
        "timestamp": {"S": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"},
        "taqueria": {"S": rng.choice(TAQUERIAS)},
        "quantity": {"N": str(quantity)},
        "total_price": {"S": f"{cents // 100}.{cents % 100:02d}"},
        "orderItems": {"L": items},
        "customer": {"M": {"name": {"S": rng.choice(NAMES)}}},
        "status": {"S": STATUSES[0]},
    }


def create_orders_table(aws: Aws, table: str = ORDERS_TABLE, items: int = 8, *, stream: bool = True) -> bool:
    """The guide's `orders` table (order_id S + timestamp S) with a NEW_AND_OLD_IMAGES stream (or
    none) and a few orders; False if it exists already."""
    ddb = aws.client("dynamodb")
    try:
        ddb.describe_table(TableName=table)
        return False
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
    ddb.create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": "order_id", "KeyType": "HASH"},
            {"AttributeName": "timestamp", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "order_id", "AttributeType": "S"},
            {"AttributeName": "timestamp", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        **(
            {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}}
            if stream
            else {}
        ),
    )
    ddb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    rng = random.Random(2024)
    for _ in range(items):
        ddb.put_item(TableName=table, Item=sample_order(rng))
    return True


def put_sample_order(aws: Aws, table: str = ORDERS_TABLE) -> dict:
    """Insert a new order; returns it as plain values."""
    item = sample_order()
    aws.client("dynamodb").put_item(TableName=table, Item=item)
    return {name: next(iter(value.values())) for name, value in item.items()}


def update_sample_order(aws: Aws, table: str = ORDERS_TABLE) -> dict | None:
    """Move one order on to its next status (a MODIFY); None if the table is empty."""
    ddb = aws.client("dynamodb")
    found = ddb.scan(TableName=table, Limit=25).get("Items", [])
    if not found:
        return None
    item = random.choice(found)
    status = item.get("status", {}).get("S", STATUSES[0])
    following = (
        STATUSES[min(STATUSES.index(status) + 1, len(STATUSES) - 1)] if status in STATUSES else "ready"
    )
    ddb.update_item(
        TableName=table,
        Key={"order_id": item["order_id"], "timestamp": item["timestamp"]},
        UpdateExpression="SET #s = :s, quantity = :q",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={
            ":s": {"S": following},
            ":q": {"N": str(int(item.get("quantity", {}).get("N", "1")) + 1)},
        },
    )
    return {"order_id": item["order_id"]["S"], "status": following}


def delete_sample_order(aws: Aws, table: str = ORDERS_TABLE) -> dict | None:
    """Delete one order (a REMOVE); None if the table is empty."""
    ddb = aws.client("dynamodb")
    found = ddb.scan(TableName=table, Limit=25).get("Items", [])
    if not found:
        return None
    item = random.choice(found)
    ddb.delete_item(TableName=table, Key={"order_id": item["order_id"], "timestamp": item["timestamp"]})
    return {"order_id": item["order_id"]["S"]}


# --- The relay ----------------------------------------------------------------------------------


def relay_alive() -> bool:
    try:
        return bool(redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).exists(HEARTBEAT_KEY))
    except redis.RedisError:
        return False


class Relay:
    """Delivers the changes of each sandbox pipeline's table to its pool, as Firehose would.

    base_url: where this Shoal answers (deliveries go to base_url + the pool's endpoint path);
    without it, to the endpoint URL the pipeline gave Firehose.
    """

    def __init__(self, base_url: str = "", *, retry_seconds: float = 30.0, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.retry_seconds = retry_seconds
        self.timeout = timeout

    def pipelines(self):
        # A DynamoDB Streams pull reads the table's stream itself: nothing stands in for it.
        return (
            Pipeline.objects.select_related("pool", "connection")
            .filter(status=Pipeline.Status.ACTIVE, destination_enabled_at__isnull=False)
            .exclude(connection__endpoint_url="")
            .exclude(delivery_mode=Pipeline.Mode.STREAMS)
        )

    def run_once(self) -> int:
        delivered = 0
        for pipeline in self.pipelines():
            try:
                delivered += self.relay(pipeline)
            except Exception as exc:  # one broken pipeline must not stop the others
                log.warning("relay: pipeline %s (%s): %s", pipeline.pk, pipeline.table_name, exc)
        return delivered

    def run_forever(self, stop: threading.Event, interval: float = 1.0) -> None:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)
        while not stop.is_set():
            try:
                client.set(HEARTBEAT_KEY, "1", ex=HEARTBEAT_TTL)
            except redis.RedisError as exc:
                log.warning("relay heartbeat: %s", exc)
            count = self.run_once()
            if count:
                log.info("relay: delivered %d change records", count)
            stop.wait(interval)

    def endpoint(self, pipeline: Pipeline) -> str:
        return self.base_url + pipeline.pool.endpoint_path() if self.base_url else pipeline.endpoint_url

    def relay(self, pipeline: Pipeline) -> int:
        """One pass over the table's stream shards; returns the records delivered.

        The one reading loop (pools/reading.py) with the pull reader's walk over the shards: the
        changes go to the endpoint (or, for Kinesis pull, into the stream), and the position is
        saved after each page is delivered, so a crash resends at most one page (which the
        endpoint's per-request and the pool's per-record handling tolerate).
        """
        aws = connect(pipeline.connection)
        stream = DynamoDBStream(
            aws,
            pipeline,
            # Only the changes made since streaming was "enabled", as a destination would send.
            start_ms=epoch(pipeline.destination_enabled_at),
            start_second=False,
            precision=pipeline.precision,
        )
        if not stream.arn:
            log.warning(
                "relay: table %s has no DynamoDB stream (enable NEW_AND_OLD_IMAGES)", pipeline.table_name
            )
            return 0
        saved = _relay_positions(pipeline, stream.arn)

        def save(batch: Batch, stored: bool) -> None:
            position = advance(batch)
            saved[position.shard_id] = position
            kept = {p.shard_id: {"seq": p.sequence_number, "finished": p.finished} for p in saved.values()}
            SandboxRelay.objects.update_or_create(
                pipeline=pipeline, defaults={"checkpoint": {stream.arn: kept}}
            )

        def deliver(batch: Batch) -> bool:
            self._deliver(pipeline, batch.records)
            return True

        pages = shard_pages(stream, saved, Position, f"relay:{pipeline.pk}")
        return land_batches(pages, land=deliver, save=save, together=False).records

    def _deliver(self, pipeline: Pipeline, records: list[bytes]) -> None:
        if pipeline.delivery_mode == Pipeline.Mode.KINESIS:
            # Kinesis pull: the relay stands in for the table's streaming destination only, and
            # Shoal's reader reads the stream as it would in AWS.
            kinesis = connect(pipeline.connection).client("kinesis")
            for start in range(0, len(records), 500):  # PutRecords takes at most 500
                kinesis.put_records(
                    StreamName=pipeline.stream_name,
                    Records=[{"Data": r, "PartitionKey": _item_key(r)} for r in records[start : start + 500]],
                )
            return
        sender = FirehoseSender(
            self.endpoint(pipeline),
            pipeline.pool.access_key,
            gzip_body=pipeline.content_encoding == "GZIP",
            timeout=self.timeout,
            retry_seconds=self.retry_seconds,
            source_arn=pipeline.firehose_arn
            or "arn:aws:firehose:us-east-1:000000000000:deliverystream/sandbox",
        )
        with sender:
            for batch in batches(records, pipeline.buffer_size_mib << 20):
                result = sender.send(batch)
                if not result.ok:
                    raise RuntimeError(f"delivery failed ({result.status}): {result.error}")


def _relay_positions(pipeline: Pipeline, stream_arn: str) -> dict[str, Position]:
    """The relay's position in each shard of the stream (older rows kept only a sequence number)."""
    saved = SandboxRelay.objects.filter(pipeline=pipeline).values_list("checkpoint", flat=True).first()
    positions = {}
    for shard_id, kept in dict((saved or {}).get(stream_arn, {})).items():
        if isinstance(kept, str):
            kept = {"seq": kept}
        positions[shard_id] = Position(shard_id, kept.get("seq", ""), bool(kept.get("finished")))
    return positions


def _item_key(record: bytes) -> str:
    """The partition key DynamoDB uses for a change: its item's key, so one item's changes stay
    in one shard, in order."""
    keys = json.loads(record)["dynamodb"]["Keys"]
    return hashlib.md5(json.dumps(keys, sort_keys=True).encode(), usedforsecurity=False).hexdigest()


def wait_for_emulator(endpoint_url: str, timeout: float = 30.0) -> None:
    """Wait until the moto server answers (it starts alongside the relay)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(endpoint_url.rstrip("/") + "/moto-api/", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the AWS emulator at {endpoint_url} did not start in {timeout:.0f} s"
                ) from None
            time.sleep(0.3)
