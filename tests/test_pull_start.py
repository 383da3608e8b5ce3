"""Where a pull starts (issue 22): from the oldest record the stream keeps, from now (when the
pipeline was created), or from a time; against a real moto server. And the snapshot's rule holds:
no backfill may start before the reader's start, or the changes in between would be missed."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from pools.aws import forms, pipelines, snapshot
from pools.aws.models import Pipeline
from pools.ingest import records
from pools.pull import reader, streams
from pools.pull.runner import stream_for
from pools.services import create_pool
from tests.helpers.aws import make_pipeline
from tests.helpers.pull import stored_event_ids, streaming_table

pytestmark = pytest.mark.django_db(transaction=True)

TABLE = "orders_started"


def _put(ddb, order_id: str) -> None:
    ddb.put_item(TableName=TABLE, Item={"order_id": {"S": order_id}, "qty": {"N": "1"}})


def _pull(pool, aws, mode: str, start: str, at=None) -> Pipeline:
    pipeline = pipelines.create_pipeline(
        pool,
        aws.connection,
        table_name=TABLE,
        delivery_mode=mode,
        stream_name="orders-started",
        pull_start=start,
        pull_start_at=at,
        start=False,
    )
    Pipeline.objects.filter(pk=pipeline.pk).update(status=Pipeline.Status.ACTIVE)
    return Pipeline.objects.get(pk=pipeline.pk)


@pytest.mark.aws
def test_a_streams_pull_from_now_leaves_out_what_the_stream_held_before(aws, no_worker):
    ddb = aws.client("dynamodb")
    streaming_table(ddb, TABLE)
    for n in range(4):
        _put(ddb, f"before-{n}")  # already on the table's stream when the pipeline is created
    # The start is taken to its second (AWS's stream times are to the second): records made in
    # the start's own second are kept, so the ones before are made a second earlier.
    time.sleep(1.05)
    oldest, now = create_pool("from_oldest"), create_pool("from_now")
    from_oldest = _pull(oldest, aws, Pipeline.Mode.STREAMS, Pipeline.Start.OLDEST)
    from_now = _pull(now, aws, Pipeline.Mode.STREAMS, Pipeline.Start.NOW)
    assert from_now.pull_start_at is not None and from_oldest.pull_start_at is None
    _put(ddb, "after-0")
    _put(ddb, "after-1")
    for pipeline in (from_oldest, from_now):
        reader.read_once(pipeline, stream_for(aws, pipeline))
        assert reader.read_once(pipeline, stream_for(aws, pipeline)).records == 0  # read to the end
    assert len(stored_event_ids(oldest)) == 6
    assert len(stored_event_ids(now)) == 2
    # The left-out records moved the checkpoint on: the next pass does not look at them again.
    checkpoint = from_now.shard_checkpoints.get()
    assert checkpoint.records == 2 and checkpoint.sequence_number


@pytest.mark.aws
def test_a_kinesis_pull_from_a_time_starts_there(aws, no_worker):
    kinesis = aws.client("kinesis")
    kinesis.create_stream(StreamName="orders-started", ShardCount=1)

    def put(n: int) -> None:
        change = records.change_record(
            "INSERT",
            keys={"order_id": {"S": f"k{n}"}},
            event_id=f"e{n}",
            created=int(time.time() * 1000),
            table_name=TABLE,
            region="us-east-1",
        )
        kinesis.put_record(
            StreamName="orders-started", Data=records.encode_record(change), PartitionKey=f"k{n}"
        )

    for n in range(3):
        put(n)
    time.sleep(1.1)
    start_at = timezone.now()
    time.sleep(1.1)
    for n in range(3, 5):
        put(n)
    pool = create_pool("kinesis_from_a_time")
    pipeline = _pull(pool, aws, Pipeline.Mode.KINESIS, Pipeline.Start.AT, start_at)
    pipeline.stream_arn = kinesis.describe_stream(StreamName="orders-started")["StreamDescription"][
        "StreamARN"
    ]
    pipeline.save(update_fields=["stream_arn"])
    stream = stream_for(aws, pipeline)
    assert isinstance(stream, streams.KinesisStream) and stream.start_ms == pipeline.pull_start_ms
    assert reader.read_once(pipeline, stream).records == 2
    assert set(stored_event_ids(pool)) == {"e3", "e4"}


@pytest.mark.aws
def test_no_backfill_starts_before_the_reader_does(aws, no_worker):
    pool = create_pool("backfill_rule")
    pipeline = make_pipeline(pool, aws, TABLE)
    later = timezone.now() + timedelta(minutes=5)
    Pipeline.objects.filter(pk=pipeline.pk).update(
        delivery_mode=Pipeline.Mode.STREAMS,
        pull_start=Pipeline.Start.AT,
        pull_start_at=later,
        status=Pipeline.Status.ACTIVE,
        destination_enabled_at=timezone.now(),
    )
    pipeline.refresh_from_db()
    assert not snapshot.streaming_ready(pipeline)
    with pytest.raises(snapshot.SnapshotError, match="once the reader starts"):
        snapshot.start(pipeline)
    Pipeline.objects.filter(pk=pipeline.pk).update(pull_start_at=timezone.now() - timedelta(seconds=1))
    pipeline.refresh_from_db()
    assert snapshot.streaming_ready(pipeline)


def test_the_delivery_step_asks_where_a_pull_starts():
    past = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    future = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    at = forms.DeliveryForm({"mode": "streams_pull", "start": "at", "start_at": past})
    assert at.is_valid(), at.errors
    assert at.cleaned_data["start_at"].strftime("%Y-%m-%dT%H:%M") == past
    assert "start_at" in forms.DeliveryForm({"mode": "kinesis_pull", "start": "at"}).errors
    too_soon = forms.DeliveryForm({"mode": "kinesis_pull", "start": "at", "start_at": future})
    assert "in the future" in str(too_soon.errors["start_at"])
    now = forms.DeliveryForm({"mode": "kinesis_pull", "start": "now", "start_at": past})
    assert now.is_valid() and now.cleaned_data["start_at"] is None
    # Firehose reads from when it is created: a start given with it is ignored, not refused.
    push = forms.DeliveryForm({"mode": "firehose", "start": "at", "start_at": future})
    assert push.is_valid() and push.cleaned_data["start"] == "oldest"
