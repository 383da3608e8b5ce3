"""The pull reader's core (issue 22, not yet wired to a process or the wizard): a pipeline's stream
read directly, DynamoDB Streams and Kinesis, against a real moto server; each page landed through
the one landing path with its shard's checkpoint in the same transaction."""

from __future__ import annotations

import base64
import json

import pytest

from pools.aws.models import ShardCheckpoint
from pools.ingest import journal, records
from pools.models import Delivery
from pools.pull import lineage, reader, streams
from pools.services import create_pool
from tests.helpers.aws import make_pipeline
from tests.helpers.pull import streaming_table

pytestmark = pytest.mark.django_db(transaction=True)


def landed(pool) -> list[dict]:
    """Every change record stored for the pool, read back from the deliveries' bodies (the tests
    run with no warehouse worker, which would load them and discard the bodies)."""
    out = []
    for delivery in Delivery.objects.filter(pool=pool).order_by("id"):
        raw = journal.path_of(delivery.body_path).read_bytes() if delivery.body_path else bytes(delivery.body)
        out += [json.loads(base64.b64decode(r["data"])) for r in json.loads(raw)["records"]]
    return out


def test_lineage_reads_a_child_only_after_its_parents():
    shards = [
        {"ShardId": "p"},
        {"ShardId": "c1", "ParentShardId": "p"},
        {"ShardId": "m", "ParentShardId": "c1", "AdjacentParentShardId": "c2"},
        {"ShardId": "c2", "ParentShardId": "p"},
        {"ShardId": "orphan", "ParentShardId": "aged-out"},
    ]
    assert lineage.readable(shards, set()) == ["p", "orphan"]
    assert lineage.readable(shards, {"p"}) == ["c1", "c2", "orphan"]
    assert lineage.readable(shards, {"p", "c1"}) == ["c2", "orphan"]
    assert lineage.readable(shards, {"p", "c1", "c2", "orphan"}) == ["m"]


def test_a_dynamodb_stream_is_read_once_and_a_failed_landing_reads_again(aws, monkeypatch, no_worker):
    ddb = aws.client("dynamodb")
    streaming_table(ddb, "orders_pull")
    pool = create_pool("pulled_orders")
    pipeline = make_pipeline(pool, aws, "orders_pull")
    for n in range(3):
        ddb.put_item(TableName="orders_pull", Item={"order_id": {"S": f"o{n}"}, "qty": {"N": str(n)}})
    ddb.update_item(
        TableName="orders_pull",
        Key={"order_id": {"S": "o1"}},
        UpdateExpression="SET qty = :q",
        ExpressionAttributeValues={":q": {"N": "9"}},
    )
    ddb.delete_item(TableName="orders_pull", Key={"order_id": {"S": "o2"}})
    stream = streams.DynamoDBStream(aws, pipeline)

    # The checkpoint cannot be saved: the delivery is not kept either, and nothing moves on.
    real_save = ShardCheckpoint.save

    def broken(self, *args, **kwargs):
        raise RuntimeError("the reader was killed")

    monkeypatch.setattr(ShardCheckpoint, "save", broken)
    with pytest.raises(RuntimeError):
        reader.read_once(pipeline, stream)
    assert not Delivery.objects.filter(pool=pool).exists()
    monkeypatch.setattr(ShardCheckpoint, "save", real_save)

    first = reader.read_once(pipeline, stream)
    assert first.records == 5
    assert reader.read_once(pipeline, stream).records == 0  # nothing twice
    ddb.put_item(TableName="orders_pull", Item={"order_id": {"S": "o3"}, "qty": {"N": "3"}})
    assert reader.read_once(pipeline, stream).records == 1
    changes = landed(pool)
    assert [c["eventName"] for c in changes] == ["INSERT", "INSERT", "INSERT", "MODIFY", "REMOVE", "INSERT"]
    assert all(c["tableName"] == "orders_pull" and "Keys" in c["dynamodb"] for c in changes)


def test_a_kinesis_stream_split_while_reading_loses_and_repeats_nothing(aws, no_worker):
    """moto closes the parent (it lists an ending sequence number) but keeps routing records to
    it, and never answers a closed shard's end with no next iterator: the reader reads the
    listing too, and finishes the parent once its last record is landed."""
    kinesis = aws.client("kinesis")
    kinesis.create_stream(StreamName="orders-cdc-pull", ShardCount=1)
    pool = create_pool("kinesis_orders")
    pipeline = make_pipeline(pool, aws, "orders")
    pipeline.stream_name = "orders-cdc-pull"
    pipeline.save(update_fields=["stream_name"])

    def put(n: int) -> None:
        change = records.change_record(
            "INSERT",
            keys={"order_id": {"S": f"k{n}"}},
            new_image={"order_id": {"S": f"k{n}"}},
            event_id=f"e{n}",
            created=1_700_000_000_000 + n,
            table_name="orders",
            region="us-east-1",
        )
        kinesis.put_record(
            StreamName="orders-cdc-pull", Data=records.encode_record(change), PartitionKey=f"k{n}"
        )

    for n in range(20):
        put(n)
    stream = streams.KinesisStream(aws, pipeline)
    assert reader.read_once(pipeline, stream).records == 20
    parent = kinesis.list_shards(StreamName="orders-cdc-pull")["Shards"][0]
    kinesis.split_shard(
        StreamName="orders-cdc-pull", ShardToSplit=parent["ShardId"], NewStartingHashKey=str(2**127)
    )
    for n in range(20, 60):
        put(n)
    total = 20
    for _ in range(5):  # the parent is finished first, then its children are read
        total += reader.read_once(pipeline, stream).records
    event_ids = [c["eventID"] for c in landed(pool)]
    assert total == 60 and sorted(event_ids) == sorted(f"e{n}" for n in range(60))
    assert ShardCheckpoint.objects.get(pipeline=pipeline, shard_id=parent["ShardId"]).finished
    # A child split again before it held a record is finished too, so its own children are read.
    child = next(
        s for s in kinesis.list_shards(StreamName="orders-cdc-pull")["Shards"] if s.get("ParentShardId")
    )
    kinesis.split_shard(
        StreamName="orders-cdc-pull", ShardToSplit=child["ShardId"], NewStartingHashKey=str(2**126)
    )
    for _ in range(2):
        reader.read_once(pipeline, stream)
    assert ShardCheckpoint.objects.get(pipeline=pipeline, shard_id=child["ShardId"]).finished


class GappedStream:
    """A Kinesis shard as AWS documents it and moto does not emulate: GetRecords may answer empty
    pages (with MillisBehindLatest > 0) for a while before the records further on, and each call
    only moves the iterator on. An iterator made again from the checkpoint starts over."""

    arn = "arn:aws:kinesis:us-east-1:000000000000:stream/gapped"

    def __init__(self, empty_pages: int, records: list[bytes]):
        self.empty_pages, self.records, self.calls = empty_pages, records, 0

    def shards(self) -> list[dict]:
        return [{"ShardId": "shardId-000000000000"}]

    def iterator(self, shard_id: str, after: str | None) -> str:
        return f"{int(after or 0)}:0"  # (records read, empty pages passed)

    def page(self, iterator: str) -> streams.Page:
        self.calls += 1
        read, passed = (int(x) for x in iterator.split(":"))
        if read == 0 and passed < self.empty_pages:
            return streams.Page([], None, f"0:{passed + 1}", 60_000)  # behind, nothing in this window
        held = self.records[read : read + 2]
        last = str(read + len(held)) if held else None
        return streams.Page(held, last, f"{read + len(held)}:{passed}", 0 if not held else 1)


def test_empty_pages_before_the_records_are_walked_across_passes(no_worker):
    """25 empty pages stand before the records: a pass reads 10 pages of a shard, and each pass
    made a fresh iterator from the checkpoint, so the reader started over and never got there.
    The reader now keeps going while the stream says it is behind, and keeps its iterator from one
    pass to the next (AWS's iterators live 5 minutes)."""
    pool = create_pool("gapped")
    from pools.aws.models import AwsConnection, Pipeline

    connection = AwsConnection.objects.create(name="gap", region="us-east-1")
    pipeline = Pipeline.objects.create(
        pool=pool, connection=connection, status="active", delivery_mode="kinesis_pull", table_name="t"
    )
    change = records.encode_record(
        records.change_record(
            "INSERT", keys={"k": {"S": "1"}}, event_id="e1", created=1, table_name="t", region="r"
        )
    )
    stream = GappedStream(25, [change, change.replace(b"e1", b"e2"), change.replace(b"e1", b"e3")])
    iterators: dict = {}
    got = sum(reader.read_once(pipeline, stream, iterators).records for _ in range(4))
    assert got == 3 and sorted(c["eventID"] for c in landed(pool)) == ["e1", "e2", "e3"]
    assert reader.read_once(pipeline, stream, iterators).records == 0  # nothing twice
