"""The two streams a pull reads, behind one interface: `shards()`, `iterator(shard, after)` and
`page(iterator)` → Page. Records come out as Kinesis-for-DynamoDB change records (the shape
Firehose delivers), so everything after the landing is the same whatever the source."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings

from pools.aws.sandbox import to_kds_record
from pools.ingest.records import encode_record


@dataclass
class Page:
    records: list[bytes]
    last_sequence: str | None
    next_iterator: str | None  # None: the shard is closed and read to its end
    lag_ms: int | None


class DynamoDBStream:
    """The table's DynamoDB stream (NEW_AND_OLD_IMAGES): no Kinesis, no Firehose."""

    def __init__(self, aws, pipeline):
        self.pipeline = pipeline
        self.client = aws.client("dynamodbstreams")
        table = aws.client("dynamodb").describe_table(TableName=pipeline.table_name)["Table"]
        self.arn = table.get("LatestStreamArn") or ""

    def shards(self) -> list[dict]:
        return self.client.describe_stream(StreamArn=self.arn)["StreamDescription"].get("Shards", [])

    def iterator(self, shard_id: str, after: str | None, start: str = "TRIM_HORIZON") -> str:
        kwargs = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
            if after
            else {"ShardIteratorType": start}
        )
        return self.client.get_shard_iterator(StreamArn=self.arn, ShardId=shard_id, **kwargs)["ShardIterator"]

    def page(self, iterator: str) -> Page:
        found = self.client.get_records(ShardIterator=iterator, Limit=settings.PULL_PAGE_LIMIT)
        raw = found.get("Records", [])
        pipeline = self.pipeline
        records = [
            encode_record(
                to_kds_record(
                    r,
                    table_name=pipeline.table_name,
                    region=pipeline.connection.region,
                    precision="MILLISECOND",
                )
            )
            for r in raw
        ]
        last = raw[-1]["dynamodb"]["SequenceNumber"] if raw else None
        lag = None
        if raw:  # DynamoDB Streams says no lag: the age of the last record read stands for it
            created = raw[-1]["dynamodb"].get("ApproximateCreationDateTime")
            lag = max(0, int(time.time() * 1000 - _epoch_ms(created))) if created is not None else None
        return Page(records, last, found.get("NextShardIterator"), lag)


class KinesisStream:
    """The table's Kinesis data stream (the guide's Step 1), read directly: no Firehose."""

    def __init__(self, aws, pipeline):
        self.client = aws.client("kinesis")
        self.arn = pipeline.stream_arn
        self.name = pipeline.stream_name

    def shards(self) -> list[dict]:
        shards, token = [], None
        while True:
            found = (
                self.client.list_shards(NextToken=token)
                if token
                else self.client.list_shards(StreamName=self.name)
            )
            shards += found.get("Shards", [])
            token = found.get("NextToken")
            if not token:
                return shards

    def iterator(self, shard_id: str, after: str | None, start: str = "TRIM_HORIZON") -> str:
        kwargs = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": after}
            if after
            else {"ShardIteratorType": start}
        )
        return self.client.get_shard_iterator(StreamName=self.name, ShardId=shard_id, **kwargs)[
            "ShardIterator"
        ]

    def page(self, iterator: str) -> Page:
        found = self.client.get_records(ShardIterator=iterator, Limit=settings.PULL_PAGE_LIMIT)
        raw = found.get("Records", [])
        # The Kinesis destination writes each change as the record Firehose would deliver.
        records = [bytes(r["Data"]) for r in raw]
        last = raw[-1]["SequenceNumber"] if raw else None
        return Page(records, last, found.get("NextShardIterator"), found.get("MillisBehindLatest"))


def _epoch_ms(value) -> float:
    if hasattr(value, "timestamp"):
        return value.timestamp() * 1000
    return float(value) * 1000
