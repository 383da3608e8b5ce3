"""A faithful replica: whatever order Kinesis and Firehose deliver DynamoDB's changes in, and
however often, the entity pool (as a user queries it) equals the table, attribute for attribute.

Random puts, updates and deletes on a real DynamoDB table (a moto server process); their change
records, read from the table's stream and put into the Kinesis-for-DynamoDB shape, are delivered
to the pool's endpoint in shuffled batches, with records duplicated and whole requests repeated
under the same request id. Then a Materialized View with Shoal's defaults for a DynamoDB source
(the change time as version, REMOVE deletes) must give exactly what a full Scan gives.
"""

from __future__ import annotations

import random
import time
import uuid

import pytest

from console import warehouse_client
from console.tasks import run_sql
from pools.ingest.records import encode_record, firehose_body, to_kds_record
from pools.models import DataPool, Delivery
from tests.helpers.aws import make_pipeline
from tests.helpers.firehose import endpoint, firehose_headers
from tests.helpers.roles import make_user
from tests.helpers.servers import http
from tests.helpers.waiting import wait_for
from views_mv import services
from views_mv.models import Backfill

pytestmark = pytest.mark.django_db(transaction=True)

FLATTEN = """SELECT
  keys.order_id.S AS order_id,
  if(event_name = 'REMOVE', true, false) AS deleted,
  new_image
FROM {pool}"""


def create_orders_table(ddb, table: str, *, stream: bool = True) -> None:
    spec = {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}}
    ddb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "order_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "order_id", "KeyType": "HASH"}],
        **(spec if stream else {}),
    )


def all_loaded(pool) -> None:
    wait_for(
        lambda: not Delivery.objects.filter(pool=pool).exclude(status="loaded").exists(),
        timeout=60,
        message="every delivery loaded",
    )


def random_item(rng: random.Random, order_id: str) -> dict:
    item = {
        "order_id": {"S": order_id},
        "quantity": {"N": str(rng.randint(1, 9))},
        "taqueria": {"S": rng.choice(["El Farolito", "La Taqueria", "Tacos Don Chuy"])},
    }
    if rng.random() < 0.5:
        item["paid"] = {"BOOL": rng.random() < 0.5}
    if rng.random() < 0.5:
        item["items"] = {
            "L": [{"S": rng.choice(["al pastor", "carnitas", "horchata"])} for _ in range(rng.randint(1, 3))]
        }
    if rng.random() < 0.3:
        item["customer"] = {"M": {"name": {"S": rng.choice(["Ana", "Luis"])}, "vip": {"BOOL": True}}}
    return item


def mutate(ddb, table: str, rng: random.Random, operations: int) -> None:
    """Random puts (new items and overwrites), updates and deletes, a few ms apart (as real
    changes are: the stream's ApproximateCreationDateTime has millisecond precision)."""
    ids = [f"o{n}" for n in range(12)]
    present = {item["order_id"]["S"] for item in ddb.scan(TableName=table)["Items"]}
    for _ in range(operations):
        order_id = rng.choice(ids)
        roll = rng.random()
        # An update of a missing item would be a put: moto streams it as two INSERTs in the same
        # millisecond (a bare key, then the item), which DynamoDB does not; so updates only touch
        # items that exist.
        if roll < 0.5 or (roll < 0.8 and order_id not in present):
            ddb.put_item(TableName=table, Item=random_item(rng, order_id))
            present.add(order_id)
        elif roll < 0.8:
            ddb.update_item(
                TableName=table,
                Key={"order_id": {"S": order_id}},
                UpdateExpression="SET quantity = :q, taqueria = :t",
                ExpressionAttributeValues={":q": {"N": str(rng.randint(1, 99))}, ":t": {"S": "Los Cuates"}},
            )
        else:
            ddb.delete_item(TableName=table, Key={"order_id": {"S": order_id}})
            present.discard(order_id)
        time.sleep(0.003)


def stream_records(aws, table: str) -> list[bytes]:
    """Every change of the table, from its DynamoDB stream, in the Kinesis-for-DynamoDB shape."""
    ddb, streams = aws.client("dynamodb"), aws.client("dynamodbstreams")
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            records += page["Records"]
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return [encode_record(to_kds_record(r, table_name=table, region="us-east-1")) for r in records]


def deliver_chaotically(live_server, pool, records: list[bytes], rng: random.Random) -> int:
    """Shuffled batches with duplicated records, some requests sent twice with the same id."""
    chaos = records + rng.sample(records, k=max(1, len(records) // 5))  # duplicated records
    rng.shuffle(chaos)
    sent = 0
    while chaos:
        size = rng.randint(1, 15)
        batch, chaos = chaos[:size], chaos[size:]
        request_id = str(uuid.uuid4())
        body = firehose_body(request_id, batch)
        for _ in range(2 if rng.random() < 0.3 else 1):  # a Firehose retry of the same request
            reply = http(
                "POST", endpoint(live_server, pool), body, firehose_headers(request_id, pool.access_key)
            )
            assert reply.status == 200, reply.body
        sent += 1
    return sent


def entity_state(target: str) -> dict[str, dict]:
    result = warehouse_client.call(run_sql, f"SELECT order_id, new_image FROM {target} ORDER BY order_id")
    assert "error" not in result, result
    return dict(result["rows"])


def assert_replica(pool, target: str, truth: dict) -> None:
    state = entity_state(target)
    if state != truth:
        for key in sorted(k for k in set(truth) | set(state) if state.get(k) != truth.get(k))[:2]:
            rows = warehouse_client.call(
                run_sql,
                "SELECT event_name, approximate_creation_date_time, event_id, toJSONString(new_image) "
                f"FROM {pool.name} WHERE keys.order_id.S = '{key}' ORDER BY approximate_creation_date_time",
            )["rows"]
            print(f"\nDEBUG {key} truth={truth.get(key)} state={state.get(key)}")
            for row in rows:
                print("DEBUG", row)
    assert state == truth


def scan(aws, table: str) -> dict[str, dict]:
    items = aws.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]
    return {item["order_id"]["S"]: item for item in items}


@pytest.mark.parametrize("seed", [7, 42])
def test_the_entity_pool_equals_the_table_whatever_the_delivery_order(
    seed, live_server, pool, warehouse_worker, aws
):
    rng = random.Random(seed)
    ddb = aws.client("dynamodb")
    table = f"orders_{seed}"
    create_orders_table(ddb, table)
    mutate(ddb, table, rng, operations=120)
    records = stream_records(aws, table)
    assert len(records) >= 100
    deliver_chaotically(live_server, pool, records, rng)
    all_loaded(pool)

    target = f"replica_{seed}"
    mv = services.create_mv(
        f"flatten_{seed}",
        FLATTEN.format(pool=pool.name),
        target_pool=target,
        mutable=True,
        unique=["order_id"],
        backfill=True,
    )
    assert mv.target_pool.engine == "ReplacingMergeTree(_shoal_version, deleted)"
    wait_for(lambda: Backfill.objects.filter(mv=mv, status="done").exists(), timeout=60, message="backfill")

    assert_replica(pool, target, scan(aws, table))

    # Later changes, again out of order and repeated, keep the replica equal to the table.
    mutate(ddb, table, rng, operations=40)
    later = [r for r in stream_records(aws, table) if r not in set(records)]
    deliver_chaotically(live_server, pool, later, rng)
    all_loaded(pool)
    assert_replica(pool, target, scan(aws, table))
    assert DataPool.objects.get(pk=pool.pk).quarantined_count == 0


def test_the_replica_check_finds_what_differs(
    live_server, pool, warehouse_worker, default_worker, aws, aws_connection, client
):
    from views_mv.models import ReplicaCheck
    from views_mv.tasks import start_replica_check

    rng = random.Random(3)
    ddb = aws.client("dynamodb")
    table = "orders_check"
    create_orders_table(ddb, table)
    mutate(ddb, table, rng, operations=40)
    deliver_chaotically(live_server, pool, stream_records(aws, table), rng)
    all_loaded(pool)
    mv = services.create_mv(
        "flatten_check",
        FLATTEN.format(pool=pool.name),
        target_pool="replica_check",
        mutable=True,
        unique=["order_id"],
        backfill=True,
    )
    wait_for(lambda: Backfill.objects.filter(mv=mv, status="done").exists(), timeout=60, message="backfill")

    def run_check() -> dict:
        # The default worker scans the table, the (sandboxed) warehouse worker compares.
        check = ReplicaCheck.objects.create(mv=mv, connection=aws_connection, table_name=table)
        start_replica_check(check.pk)
        wait_for(
            lambda: ReplicaCheck.objects.filter(pk=check.pk).exclude(status="running").exists(),
            timeout=60,
            message="the replica check",
        )
        return ReplicaCheck.objects.get(pk=check.pk).report

    report = run_check()
    assert report["equal"] and report["checked"] == len(scan(aws, table)) and not report["sampled"]

    # Changes whose records never reach Shoal: the check names each kind of difference.
    present = sorted(scan(aws, table))
    ddb.put_item(TableName=table, Item=random_item(rng, "o-new"))
    ddb.update_item(
        TableName=table,
        Key={"order_id": {"S": present[0]}},
        UpdateExpression="SET quantity = :q",
        ExpressionAttributeValues={":q": {"N": "12345"}},
    )
    ddb.delete_item(TableName=table, Key={"order_id": {"S": present[1]}})
    report = run_check()
    assert not report["equal"]
    assert report["missing"] == ['[{"S": "o-new"}]']
    assert report["extra"] == [f'[{{"S": "{present[1]}"}}]']
    assert [d["key"] for d in report["different"]] == [f'[{{"S": "{present[0]}"}}]']
    assert report["different"][0]["attributes"]["quantity"][0] == {"N": "12345"}

    client.force_login(make_user("admin", "u"))
    page = client.get(mv.get_absolute_url()).content.decode()
    assert "Differences" in page and "Missing from the pool" in page and "12345" in page


def test_replica_comparison_ignores_set_order_and_binary_encoding():
    from views_mv import replica

    table = {"k": {"id": {"S": "k"}, "tags": {"SS": ["b", "a"]}, "blob": {"B": b"\x00\x01"}}}
    pool = {"k": {"id": {"S": "k"}, "tags": {"SS": ["a", "b"]}, "blob": {"B": "AAE="}}}
    assert replica.compare(table, pool, whole=True) == ([], [], [])


def test_the_replica_after_an_initial_snapshot_of_a_prefilled_table(live_server, pool, warehouse_worker, aws):
    """Items that existed before the stream was turned on come from the snapshot (version 0);
    everything after, from the stream, out of order and repeated: the result equals a Scan."""

    from pools.aws import snapshot

    rng = random.Random(11)
    ddb = aws.client("dynamodb")
    table = "orders_prefilled"
    create_orders_table(ddb, table, stream=False)
    for n in range(30):  # before the stream exists: only a snapshot can bring these
        ddb.put_item(TableName=table, Item=random_item(rng, f"p{n}"))
    ddb.update_table(
        TableName=table, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    )
    mutate(ddb, table, rng, operations=30)  # changes while the snapshot has not run yet
    for n in range(0, 30, 3):  # and changes to pre-existing items
        ddb.update_item(
            TableName=table,
            Key={"order_id": {"S": f"p{n}"}},
            UpdateExpression="SET quantity = :q",
            ExpressionAttributeValues={":q": {"N": str(1000 + n)}},
        )
        time.sleep(0.003)
    ddb.delete_item(TableName=table, Key={"order_id": {"S": "p1"}})

    pipeline = make_pipeline(pool, aws, table)
    snap = snapshot.start(pipeline, total_segments=3, page_limit=7)
    assert snapshot.run_snapshot(snap.pk).status == "done"
    mutate(ddb, table, rng, operations=20)  # and after it

    deliver_chaotically(live_server, pool, stream_records(aws, table), rng)
    all_loaded(pool)
    mv = services.create_mv(
        "flatten_prefilled",
        FLATTEN.format(pool=pool.name),
        target_pool="replica_prefilled",
        mutable=True,
        unique=["order_id"],
        backfill=True,
    )
    wait_for(lambda: Backfill.objects.filter(mv=mv, status="done").exists(), timeout=60, message="backfill")
    truth = scan(aws, table)
    assert any(key.startswith("p") for key in truth) and "p1" not in truth
    assert_replica(pool, "replica_prefilled", truth)
