"""DynamoDB Streams pull, end to end as a user runs it, against a real moto server: Connect
DynamoDB with "DynamoDB Streams pull" provisions only the table's stream, Shoal's reader reads
moto's own stream (no relay, no Firehose, no public endpoint), and the items put, modified and
deleted reach the entity pool of the guide's Step 4 view exactly."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings

from console import warehouse_client
from console.access import metrics
from console.tasks import run_sql
from pools.aws import pipelines, sandbox
from pools.aws.models import Pipeline, PipelineStep, ShardCheckpoint
from pools.aws.snapshot import streaming_ready
from pools.models import Delivery
from pools.pull.runner import HEARTBEAT_KEY, Reader
from pools.pull.status import pull_status
from tests.helpers.aws import fast_timing
from tests.helpers.pools import GUIDE_STEP_4
from tests.helpers.pull import stored_event_ids
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.aws]

TABLE = "orders_pulled"


def _table_without_stream(aws) -> None:
    sandbox.create_orders_table(aws, TABLE, items=1, stream=False)  # an item before: not a change


def _read_until(reader: Reader, records: int) -> None:
    total = {"n": 0}

    def more() -> bool:
        total["n"] += reader.pass_once()
        return total["n"] >= records

    wait_for(more, timeout=30, message=f"{records} records read")


def _change_orders(aws, table: str) -> list[dict]:
    """Four orders put, one of them modified (quantity 42) and one deleted; returns the three kept."""
    kept = [sandbox.put_sample_order(aws, table) for _ in range(3)]
    gone = sandbox.put_sample_order(aws, table)
    ddb = aws.client("dynamodb")
    ddb.update_item(
        TableName=table,
        Key={"order_id": {"S": kept[0]["order_id"]}, "timestamp": {"S": kept[0]["timestamp"]}},
        UpdateExpression="SET quantity = :q",
        ExpressionAttributeValues={":q": {"N": "42"}},
    )
    ddb.delete_item(
        TableName=table, Key={"order_id": {"S": gone["order_id"]}, "timestamp": {"S": gone["timestamp"]}}
    )
    return kept


def _assert_guide_view_exact(pool, kept: list[dict]) -> None:
    """The guide's Step 4 view's entity pool holds exactly the kept orders, the modified one at 42."""
    entity = warehouse_client.call(
        run_sql,
        f"SELECT order_id, quantity FROM entities_{pool.name} FINAL WHERE NOT deleted ORDER BY order_id",
    )["rows"]
    expected = sorted([o["order_id"], 42 if o is kept[0] else int(o["quantity"])] for o in kept)
    assert entity == expected


def _guide_view(pool):
    from views_mv import services

    mv = services.create_mv(
        f"orders_{pool.name}",
        GUIDE_STEP_4.replace("my_dynamo_orders_change_events", pool.name),
        target_pool=f"entities_{pool.name}",
        mutable=True,
        unique=["order_id"],
        deleted="deleted",
    )
    wait_for(lambda: type(mv).objects.get(pk=mv.pk).status == "active", message="view attached")
    return mv


def test_streams_pull_from_connect_to_the_entity_pool(pool, aws, warehouse_worker):
    _table_without_stream(aws)
    pipeline = pipelines.create_pipeline(
        pool, aws.connection, table_name=TABLE, delivery_mode=Pipeline.Mode.STREAMS, start=False
    )
    assert [s.key for s in pipeline.steps.filter(phase="provision")] == ["table_stream"]
    assert (
        pipelines.run_inline(pipeline, PipelineStep.Phase.PROVISION, aws=aws, timing=fast_timing())
        == "active"
    )
    pipeline.refresh_from_db()
    spec = aws.client("dynamodb").describe_table(TableName=TABLE)["Table"]["StreamSpecification"]
    assert spec == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert pipeline.table_stream_created
    assert streaming_ready(pipeline)  # "Backfill existing items" may start: the stream is on

    _guide_view(pool)

    reader = Reader()
    kept = _change_orders(aws, TABLE)
    _read_until(reader, 6)
    assert reader.pass_once() == 0  # the checkpoint holds: nothing is read twice

    wait_for(
        lambda: not Delivery.objects.filter(pool=pool).exclude(status="loaded").exists(), message="loaded"
    )
    rows = warehouse_client.call(
        run_sql,
        f"SELECT event_name, keys.order_id.S FROM {pool.name} ORDER BY event_name",
    )["rows"]
    assert sorted(r[0] for r in rows) == ["INSERT"] * 4 + ["MODIFY", "REMOVE"]
    _assert_guide_view_exact(pool, kept)
    checkpoint = ShardCheckpoint.objects.get(pipeline=pipeline)
    assert checkpoint.records == 6 and checkpoint.lag_ms is not None

    redis.Redis.from_url(settings.REDIS_URL).delete(HEARTBEAT_KEY)  # a reader process of an earlier test
    scraped = metrics.render().decode()
    assert f'shoal_pull_records_total{{pool="{pool.name}"}} 6.0' in scraped
    assert f'shoal_pull_lag_seconds{{pool="{pool.name}"}}' in scraped
    assert "shoal_pull_reader_up 0.0" in scraped  # this test runs passes, not the process
    assert "reader is not running" in pull_status(pipeline).warning

    # Teardown turns the stream Shoal turned on off again.
    assert (
        pipelines.run_inline(pipeline, PipelineStep.Phase.TEARDOWN, aws=aws, timing=fast_timing())
        == "removed"
    )
    assert (
        not aws.client("dynamodb")
        .describe_table(TableName=TABLE)["Table"]
        .get("StreamSpecification", {})
        .get("StreamEnabled")
    )
    assert reader.pass_once() == 0  # a removed pipeline is not read


def test_kinesis_pull_from_connect_to_the_entity_pool(pool, aws, warehouse_worker):
    """Kinesis pull: the stream step, then the reader reads the Kinesis stream (in the sandbox the
    relay stands in for the table's streaming destination, which moto lacks, and writes each
    change into Kinesis); the guide's view's entity pool is exact, and nothing is read twice."""
    sandbox.create_orders_table(aws, TABLE, items=2)  # items before: not changes
    pipeline = pipelines.create_pipeline(
        pool,
        aws.connection,
        table_name=TABLE,
        delivery_mode=Pipeline.Mode.KINESIS,
        stream_name="orders-pulled",
        start=False,
    )
    assert (
        pipelines.run_inline(pipeline, PipelineStep.Phase.PROVISION, aws=aws, timing=fast_timing())
        == "active"
    )
    _guide_view(pool)
    relay, reader = sandbox.Relay("http://127.0.0.1:9"), Reader()  # no HTTP: into Kinesis
    kept = _change_orders(aws, TABLE)
    assert relay.run_once() == 6
    _read_until(reader, 6)
    assert relay.run_once() == 0 and reader.pass_once() == 0
    wait_for(
        lambda: not Delivery.objects.filter(pool=pool).exclude(status="loaded").exists(), message="loaded"
    )
    _assert_guide_view_exact(pool, kept)
    checkpoints = ShardCheckpoint.objects.filter(pipeline=pipeline)  # one per shard of the stream
    assert {c.stream for c in checkpoints} == {Pipeline.objects.get(pk=pipeline.pk).stream_arn}
    assert sum(c.records for c in checkpoints) == 6


def test_a_failing_pipeline_backs_off_while_the_others_are_read(pool, aws, no_worker):
    from pools.services import create_pool
    from tests.helpers.aws import make_pipeline

    ddb = aws.client("dynamodb")
    _table_without_stream(aws)
    ddb.update_table(
        TableName=TABLE, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    )
    good = make_pipeline(pool, aws, TABLE)
    broken = make_pipeline(create_pool("pulled_from_nowhere"), aws, "no_such_table")
    Pipeline.objects.filter(pk__in=[good.pk, broken.pk]).update(delivery_mode=Pipeline.Mode.STREAMS)
    sandbox.put_sample_order(aws, TABLE)

    reader = Reader(first_backoff=30)
    assert reader.pass_once() == 1  # the broken one does not stop the good one
    assert broken.pk in reader._waits and good.pk not in reader._waits
    sandbox.put_sample_order(aws, TABLE)
    assert reader.pass_once() == 1  # the broken one is skipped while it backs off
    assert reader._waits[broken.pk][1] == 30


def test_in_the_sandbox_kinesis_pull_reads_what_the_relay_streams_and_streams_pull_has_no_relay(
    aws, orders_table, no_worker
):
    """moto cannot stream a table into Kinesis: for Kinesis pull the relay writes the changes into
    the Kinesis stream (as DynamoDB would) and the reader reads them; a DynamoDB Streams pull is
    read from the table's stream by the reader alone, never relayed too (that stored each change
    twice)."""
    from pools.services import create_pool

    kinesis_pool, streams_pool = create_pool("orders_via_kinesis"), create_pool("orders_via_streams")
    kinesis = pipelines.create_pipeline(
        kinesis_pool,
        aws.connection,
        table_name="orders",
        delivery_mode=Pipeline.Mode.KINESIS,
        stream_name="orders-cdc",
        start=False,
    )
    assert (
        pipelines.run_inline(kinesis, PipelineStep.Phase.PROVISION, aws=aws, timing=fast_timing()) == "active"
    )
    assert {s.key: s.state for s in Pipeline.objects.get(pk=kinesis.pk).phase_steps()} == {
        "stream": "done",
        "destination": "skipped",  # the sandbox relay stands in
    }
    # A second pool reads the same table through its DynamoDB stream (the unique-pipeline rule is per pool).
    streams_pipeline = pipelines.create_pipeline(
        streams_pool, aws.connection, table_name="orders", delivery_mode=Pipeline.Mode.STREAMS, start=False
    )
    pipelines.run_inline(streams_pipeline, PipelineStep.Phase.PROVISION, aws=aws, timing=fast_timing())
    relay, reader = sandbox.Relay("http://127.0.0.1:9"), Reader()  # nothing may be posted over HTTP

    sandbox.put_sample_order(aws)
    sandbox.update_sample_order(aws)
    assert relay.run_once() == 2  # into Kinesis, for the Kinesis pull only
    _read_until(reader, 7)  # 2 from Kinesis; 3 seeded items + 2 changes from the DynamoDB stream
    assert relay.run_once() == 0 and reader.pass_once() == 0
    kinds = {}
    for pool, expected in ((kinesis_pool, 2), (streams_pool, 5)):
        ids = stored_event_ids(pool)
        assert sum(ids.values()) == expected and max(ids.values()) == 1, (pool.name, ids)
        kinds[pool.name] = ids
    assert set(kinds["orders_via_kinesis"]) <= set(kinds["orders_via_streams"])  # the same changes


def test_a_reader_that_falls_behind_shows_its_lag_and_the_retention_warning(
    pool, aws, no_worker, admin_client, settings
):
    """The lag of a DynamoDB Streams pull is the age of the last record read; past
    PULL_LAG_WARN_SECONDS the pipeline page warns that records age out of the stream's retention
    (here the threshold is one second and the reader reads a change two seconds old)."""
    import time

    settings.PULL_LAG_WARN_SECONDS = 1
    _table_without_stream(aws)
    pipeline = pipelines.create_pipeline(
        pool, aws.connection, table_name=TABLE, delivery_mode=Pipeline.Mode.STREAMS, start=False
    )
    pipelines.run_inline(pipeline, PipelineStep.Phase.PROVISION, aws=aws, timing=fast_timing())
    sandbox.put_sample_order(aws, TABLE)
    time.sleep(2.1)  # the reader is behind: the change waits in the stream
    beat = redis.Redis.from_url(settings.REDIS_URL)
    beat.set(HEARTBEAT_KEY, "1", ex=30)  # the reader runs (this test runs its pass)
    try:
        _read_until(Reader(), 1)
        pipeline.refresh_from_db()
        status = pull_status(pipeline)
        assert status.running and status.lag_ms is not None and status.lag_ms >= 2000
        assert "behind; records older than 24 hours age out of the stream" in status.warning
        page = admin_client.get(pipeline.get_absolute_url()).content.decode()
        assert "age out of the stream" in page and f"{status.lag_ms} ms" in page
        scraped = metrics.render().decode()
        lag = float(scraped.split(f'shoal_pull_lag_seconds{{pool="{pool.name}"}} ')[1].split()[0])
        assert lag >= 2.0
    finally:
        beat.delete(HEARTBEAT_KEY)
