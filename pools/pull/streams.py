"""The two streams a pull reads, behind one interface: `arn`, `shards()`, `iterator(shard, after)`
and `page(iterator)` → Page. Records come out as Kinesis-for-DynamoDB change records (the shape
Firehose delivers), so everything after the landing is the same whatever the source.

A stream is read from its oldest record (`start_ms=None`) or from a time (epoch milliseconds): Kinesis
starts there itself (AT_TIMESTAMP); DynamoDB Streams cannot, so its pages leave out the records
made before that time (their sequence numbers still move the checkpoint on).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings

from pools.ingest.records import encode_record, epoch, to_kds_record


@dataclass
class Page:
    records: list[bytes]
    last_sequence: str | None  # of the last record read (kept or left out); None: nothing read
    next_iterator: str | None  # None: the shard is closed and read to its end
    lag_ms: int | None


class DynamoDBStream:
    """The table's DynamoDB stream (NEW_AND_OLD_IMAGES): no Kinesis, no Firehose.

    precision: of the records' ApproximateCreationDateTime once in the Kinesis shape (a pull lands
    milliseconds; the sandbox relay, standing in for a streaming destination, that destination's).
    """

    def __init__(
        self,
        aws,
        pipeline,
        *,
        start_ms: int | None = None,
        precision: str = "MILLISECOND",
        start_second: bool = True,
    ):
        self.pipeline = pipeline
        self.precision = precision
        # AWS rounds a stream record's time down to the second: a record of the start's own second
        # is kept (a change landed twice is harmless; one left out is lost). The sandbox relay,
        # which stands in for a destination enabled at an exact time, compares exactly.
        self.start_ms = start_ms // 1000 * 1000 if start_ms is not None and start_second else start_ms
        self.client = aws.client("dynamodbstreams")
        table = aws.client("dynamodb").describe_table(TableName=pipeline.table_name)["Table"]
        self.arn = table.get("LatestStreamArn") or ""

    def shards(self) -> list[dict]:
        return self.client.describe_stream(StreamArn=self.arn)["StreamDescription"].get("Shards", [])

    def iterator(self, shard_id: str, after: str | None) -> str:
        kwargs = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
            if after
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        return self.client.get_shard_iterator(StreamArn=self.arn, ShardId=shard_id, **kwargs)["ShardIterator"]

    def page(self, iterator: str) -> Page:
        found = self.client.get_records(ShardIterator=iterator, Limit=settings.PULL_PAGE_LIMIT)
        raw = found.get("Records", [])
        last = raw[-1]["dynamodb"]["SequenceNumber"] if raw else None
        lag = None
        if raw:  # DynamoDB Streams says no lag: the age of the last record read stands for it
            created = epoch(raw[-1]["dynamodb"].get("ApproximateCreationDateTime"))
            lag = max(0, int(time.time() * 1000) - created) if created is not None else None
        records = [
            encode_record(
                to_kds_record(
                    r,
                    table_name=self.pipeline.table_name,
                    region=self.pipeline.connection.region,
                    precision=self.precision,
                )
            )
            for r in raw
            if self._wanted(r)
        ]
        return Page(records, last, found.get("NextShardIterator"), lag)

    def _wanted(self, record: dict) -> bool:
        if self.start_ms is None:
            return True
        created = epoch(record["dynamodb"].get("ApproximateCreationDateTime"))
        return created is None or created >= self.start_ms


class KinesisStream:
    """The table's Kinesis data stream (the guide's Step 1), read directly: no Firehose."""

    def __init__(self, aws, pipeline, *, start_ms: int | None = None):
        self.client = aws.client("kinesis")
        self.arn = pipeline.stream_arn
        self.name = pipeline.stream_name
        self.start_ms = start_ms

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

    def iterator(self, shard_id: str, after: str | None) -> str:
        kwargs: dict[str, object]
        if after:
            kwargs = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": after}
        elif self.start_ms is not None:
            kwargs = {"ShardIteratorType": "AT_TIMESTAMP", "Timestamp": self.start_ms / 1000}
        else:
            kwargs = {"ShardIteratorType": "TRIM_HORIZON"}
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
