"""The sandbox: moto's DynamoDB stream records turned into KDS records and relayed to the pool's
endpoint in the Firehose format (a real moto server, a real live server)."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone

from console import warehouse_client
from console.tasks import run_sql
from pools.aws import sandbox
from pools.aws.clients import connect
from pools.aws.models import AwsConnection, Pipeline, SandboxRelay
from pools.ingest.records import encode_record, to_kds_record
from pools.models import DataPool, Delivery
from tests.helpers.waiting import wait_for


def _stream_records(aws, table="orders") -> list[dict]:
    arn = aws.client("dynamodb").describe_table(TableName=table)["Table"]["LatestStreamArn"]
    streams = aws.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]


def test_a_moto_stream_record_becomes_a_kds_record(aws, orders_table):
    ddb = aws.client("dynamodb")
    keys = {"order_id": {"S": "order-x"}, "timestamp": {"S": "2024-05-08T13:20:37Z"}}
    ddb.put_item(TableName="orders", Item={**keys, "quantity": {"N": "2"}, "blob": {"B": b"\x00\x01"}})
    ddb.update_item(
        TableName="orders",
        Key=keys,
        UpdateExpression="SET quantity = :q",
        ExpressionAttributeValues={":q": {"N": "3"}},
    )
    ddb.delete_item(TableName="orders", Key=keys)
    records = _stream_records(aws)[-3:]
    kds = [to_kds_record(r, table_name="orders", region="eu-west-1") for r in records]
    assert [r["eventName"] for r in kds] == ["INSERT", "MODIFY", "REMOVE"]
    insert, modify, remove = kds
    assert set(insert) == {
        "awsRegion",
        "eventID",
        "eventName",
        "userIdentity",
        "recordFormat",
        "tableName",
        "dynamodb",
        "eventSource",
    }
    assert insert["recordFormat"] == "application/json" and insert["tableName"] == "orders"
    assert insert["userIdentity"] is None and insert["awsRegion"] == "eu-west-1"
    assert insert["eventSource"] == "aws:dynamodb"
    created = insert["dynamodb"]["ApproximateCreationDateTime"]
    assert isinstance(created, int) and len(str(created)) == 13  # epoch milliseconds
    assert insert["dynamodb"]["ApproximateCreationDateTimePrecision"] == "MILLISECOND"
    assert "SequenceNumber" not in insert["dynamodb"] and "StreamViewType" not in insert["dynamodb"]
    assert "eventVersion" not in insert
    assert insert["dynamodb"]["Keys"] == keys and "OldImage" not in insert["dynamodb"]
    assert modify["dynamodb"]["OldImage"]["quantity"] == {"N": "2"}
    assert modify["dynamodb"]["NewImage"]["quantity"] == {"N": "3"}
    assert "NewImage" not in remove["dynamodb"] and remove["dynamodb"]["OldImage"]["quantity"] == {"N": "3"}
    # Binary attributes travel as base64 in the JSON, as in KDS.
    assert json.loads(encode_record(insert))["dynamodb"]["NewImage"]["blob"] == {
        "B": base64.b64encode(b"\0\1").decode()
    }


def test_the_relay_delivers_changes_to_the_pool_like_firehose(
    pool, aws, orders_table, live_server, warehouse_worker
):

    # The table had items before streaming was "enabled"; those are not changes to deliver.
    pipeline = Pipeline.objects.create(
        pool=pool,
        connection=aws.connection,
        status=Pipeline.Status.ACTIVE,
        table_name="orders",
        stream_name="orders-cdc",
        bucket_name="b",
        role_name="r",
        firehose_name="orders-to-shoal",
        firehose_arn="arn:aws:firehose:us-east-1:123456789012:deliverystream/orders-to-shoal",
        http_endpoint_name="Shoal",
        endpoint_url=pool.endpoint_url(),
        destination_enabled_at=timezone.now() + timedelta(milliseconds=5),
    )
    SandboxRelay.objects.create(pipeline=pipeline, emulated=True)
    relay = sandbox.Relay(live_server.url, retry_seconds=0)
    assert relay.run_once() == 0

    first = sandbox.put_sample_order(aws)
    moved = sandbox.update_sample_order(aws)
    assert relay.run_once() == 2
    delivery = Delivery.objects.get(pool=pool)
    assert delivery.record_count == 2 and delivery.source_arn == pipeline.firehose_arn
    assert relay.run_once() == 0  # the checkpoint holds: nothing is sent twice
    assert SandboxRelay.objects.get(pipeline=pipeline).checkpoint  # kept apart from the pipeline
    wait_for(lambda: Delivery.objects.filter(pool=pool, status="loaded").exists(), message="load")
    pool.refresh_from_db()
    assert pool.record_count == 2 and pool.quarantined_count == 0
    assert first["order_id"].startswith("order-") and moved["status"]
    # Rows carry the precision the pipeline was enabled with (MICROSECOND), as its pages say.
    rows = warehouse_client.call(
        run_sql,
        "SELECT DISTINCT approximate_creation_date_time_precision, "
        f"length(toString(approximate_creation_date_time)) FROM {pool.name}",
    )["rows"]
    assert rows == [[pipeline.precision, 16]] and pipeline.precision == "MICROSECOND"

    # A teardown stops the relay for this pipeline.
    Pipeline.objects.filter(pk=pipeline.pk).update(status=Pipeline.Status.REMOVED)
    sandbox.put_sample_order(aws)
    assert relay.run_once() == 0


def test_the_demo_commands_seed_the_sandbox_and_put_orders(db, moto, capsys):
    call_command("demo_relay", "--seed", "--once", "--endpoint-url", moto.url)
    connection = AwsConnection.objects.get(name=sandbox.CONNECTION_NAME)
    assert connection.is_emulator and connection.secret_access_key == "testing"
    assert DataPool.objects.filter(name=sandbox.DEMO_POOL).exists()
    table = connect(connection).client("dynamodb").describe_table(TableName="orders")["Table"]
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["order_id", "timestamp"]
    call_command("demo_relay", "--seed", "--once", "--endpoint-url", moto.url)  # again: nothing twice
    assert AwsConnection.objects.count() == 1 and DataPool.objects.filter(name=sandbox.DEMO_POOL).count() == 1

    call_command("demo_put_order")
    assert "put order order-" in capsys.readouterr().out
    call_command("demo_put_order", "--update")
    assert " is now " in capsys.readouterr().out


def test_demo_put_order_reaches_the_emulator_without_aws_allow_emulator(db, moto, capsys, settings):
    """Run beside `make demo` with only the data folder set (`make demo-order`), the command used
    to aim at real AWS, since the connection's endpoint is honoured only with AWS_ALLOW_EMULATOR."""
    call_command("demo_relay", "--seed", "--once", "--endpoint-url", moto.url)
    settings.AWS_ALLOW_EMULATOR = False
    call_command("demo_put_order")
    assert "put order order-" in capsys.readouterr().out
    call_command("demo_put_order", "--delete")
    assert "deleted order order-" in capsys.readouterr().out


def test_the_pipeline_page_puts_modifies_and_deletes_sample_orders(aws, admin_client, pool):
    from tests.helpers.aws import make_pipeline

    sandbox.create_orders_table(aws, items=3)
    pipeline = make_pipeline(pool, aws, "orders")
    url = f"/aws/pipelines/{pipeline.pk}/sample-order/"
    ddb = aws.client("dynamodb")

    def count() -> int:
        return ddb.scan(TableName="orders", Select="COUNT")["Count"]

    said = {}
    for change in ("put", "modify", "remove"):
        before = count()
        reply = admin_client.post(url, {"change": change}, follow=True)
        said[change] = (count() - before, " ".join(str(m) for m in reply.context["messages"]))
    assert said["put"][0] == 1 and "(an INSERT)" in said["put"][1]
    assert said["modify"][0] == 0 and "(a MODIFY)" in said["modify"][1]
    assert said["remove"][0] == -1 and "(a REMOVE)" in said["remove"][1]
    page = admin_client.get(pipeline.get_absolute_url()).content.decode()
    assert "Modify an order" in page and "Delete an order" in page
