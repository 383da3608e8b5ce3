"""Provisioning against a real moto server: every resource, its parameters, the order, re-runs.

moto 5.2 does not implement DynamoDB's Kinesis streaming-destination calls (Enable/Describe/
Disable KinesisStreamingDestination answer HTTP 500), so for THOSE CALLS ONLY the tests wrap the
real DynamoDB client built by pools/aws/clients.py in botocore's Stubber. Every other call goes to
moto; the production code path is the one used against AWS.
"""

from __future__ import annotations

import json
import uuid
from contextlib import contextmanager

import pytest
from botocore.stub import Stubber

from pools.aws import pipelines
from pools.aws.errors import AwsError
from pools.aws.models import Pipeline
from pools.aws.provisioning import registry
from pools.aws.provisioning.bucket import create_bucket_kwargs
from pools.aws.provisioning.role import FIREHOSE_POLICY_NAME
from tests.helpers.aws import ACCOUNT, fast_timing, make_connection, record_calls

STREAM_ARN = f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/orders-cdc"


def new_pipeline(pool, connection, **overrides) -> Pipeline:
    fields = {
        "table_name": "orders",
        "stream_name": "orders-cdc",
        "stream_new": True,
        "bucket_name": f"shoal-failed-orders-{uuid.uuid4().hex[:8]}",
        "bucket_new": True,
        "role_name": "shoal-firehose-orders-to-shoal",
        "firehose_name": "orders-to-shoal",
        "http_endpoint_name": "Shoal orders",
        "endpoint_url": pool.endpoint_url(),
        "buffer_size_mib": 1,
        "buffer_interval_s": 60,
        "retry_duration_s": 7200,
        "content_encoding": "NONE",
    }
    fields.update(overrides)
    return pipelines.create_pipeline(pool, connection, start=False, **fields)


def _destinations(table: str, stream_arn: str, status: str | None) -> dict:
    found = [] if status is None else [{"StreamArn": stream_arn, "DestinationStatus": status}]
    return {"TableName": table, "KinesisDataStreamDestinations": found}


@contextmanager
def streaming_enabled(aws, table: str = "orders", stream_arn: str = STREAM_ARN):
    """Stubber for the streaming-destination calls moto lacks: none yet → enable → ACTIVE."""
    stubber = Stubber(aws.client("dynamodb"))
    stubber.add_response("describe_kinesis_streaming_destination", _destinations(table, stream_arn, None))
    stubber.add_response(
        "enable_kinesis_streaming_destination",
        {"TableName": table, "StreamArn": stream_arn, "DestinationStatus": "ENABLING"},
        {
            "TableName": table,
            "StreamArn": stream_arn,
            "EnableKinesisStreamingConfiguration": {"ApproximateCreationDateTimePrecision": "MICROSECOND"},
        },
    )
    stubber.add_response(
        "describe_kinesis_streaming_destination", _destinations(table, stream_arn, "ENABLING")
    )
    stubber.add_response("describe_kinesis_streaming_destination", _destinations(table, stream_arn, "ACTIVE"))
    with stubber:
        yield stubber
    stubber.assert_no_pending_responses()


@contextmanager
def streaming_disabled(aws, table: str = "orders", stream_arn: str = STREAM_ARN):
    """Stubber for teardown's streaming-destination calls: ACTIVE → disable → DISABLED."""
    stubber = Stubber(aws.client("dynamodb"))
    stubber.add_response("describe_kinesis_streaming_destination", _destinations(table, stream_arn, "ACTIVE"))
    stubber.add_response(
        "disable_kinesis_streaming_destination",
        {"TableName": table, "StreamArn": stream_arn, "DestinationStatus": "DISABLING"},
        {"TableName": table, "StreamArn": stream_arn},
    )
    stubber.add_response(
        "describe_kinesis_streaming_destination", _destinations(table, stream_arn, "DISABLED")
    )
    with stubber:
        yield stubber
    stubber.assert_no_pending_responses()


def test_it_provisions_every_resource_with_the_guides_settings_and_streams_last(pool, aws, orders_table):
    pipeline = new_pipeline(pool, aws.connection)
    calls = record_calls(aws)
    with streaming_enabled(aws):
        status = pipelines.run_inline(pipeline, "provision", aws=aws, timing=fast_timing())
    calls = list(calls)  # what provisioning did (not the checks below)
    assert status == Pipeline.Status.ACTIVE
    pipeline.refresh_from_db()
    assert [s.state for s in pipeline.phase_steps()] == ["done"] * 5
    assert (pipeline.stream_created, pipeline.bucket_created, pipeline.role_created) == (True, True, True)
    assert pipeline.firehose_created and pipeline.destination_created and not pipeline.destination_emulated

    # Kinesis: one on-demand stream, tagged as this pipeline's.
    kinesis = aws.client("kinesis")
    summary = kinesis.describe_stream_summary(StreamName="orders-cdc")["StreamDescriptionSummary"]
    assert summary["StreamStatus"] == "ACTIVE" and summary["StreamARN"] == pipeline.stream_arn == STREAM_ARN
    assert summary["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    assert {"Key": "shoal:pipeline", "Value": pipeline.uid} in kinesis.list_tags_for_stream(
        StreamName="orders-cdc"
    )["Tags"]

    # S3: the bucket, private.
    s3 = aws.client("s3")
    block = s3.get_public_access_block(Bucket=pipeline.bucket_name)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4

    # IAM: Firehose may assume the role; the inline policy names this stream, bucket and log group only.
    iam = aws.client("iam")
    role = iam.get_role(RoleName=pipeline.role_name)["Role"]
    assert role["Arn"] == pipeline.role_arn
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": "firehose.amazonaws.com"}
    document = iam.get_role_policy(RoleName=pipeline.role_name, PolicyName=FIREHOSE_POLICY_NAME)
    policy = document["PolicyDocument"]
    policy = json.loads(policy) if isinstance(policy, str) else policy
    resources = {sid["Sid"]: sid["Resource"] for sid in policy["Statement"]}
    assert resources["ReadTheKinesisStream"] == STREAM_ARN
    bucket_arn = f"arn:aws:s3:::{pipeline.bucket_name}"
    assert resources["BackUpFailedDeliveries"] == [bucket_arn, f"{bucket_arn}/*"]
    assert resources["LogDeliveryErrors"] == [
        f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/kinesisfirehose/orders-to-shoal:log-stream:*"
    ]
    assert "*" not in json.dumps([s["Resource"] for s in policy["Statement"]]).replace("/*", "").replace(
        ":*", ""
    )

    # Firehose: Kinesis source, the pool's endpoint, the guide's settings, failed data to S3.
    described = aws.client("firehose").describe_delivery_stream(DeliveryStreamName="orders-to-shoal")
    description = described["DeliveryStreamDescription"]
    assert description["DeliveryStreamStatus"] == "ACTIVE"
    assert description["Source"]["KinesisStreamSourceDescription"]["KinesisStreamARN"] == STREAM_ARN
    http = description["Destinations"][0]["HttpEndpointDestinationDescription"]
    assert http["EndpointConfiguration"] == {"Url": pool.endpoint_url(), "Name": "Shoal orders"}
    assert http["BufferingHints"] == {"SizeInMBs": 1, "IntervalInSeconds": 60}
    assert http["RetryOptions"] == {"DurationInSeconds": 7200}
    assert http["RequestConfiguration"]["ContentEncoding"] == "NONE"
    assert http["S3BackupMode"] == "FailedDataOnly"
    assert http["S3DestinationDescription"]["BucketARN"] == bucket_arn
    assert http["S3DestinationDescription"]["ErrorOutputPrefix"] == "failed/"
    assert http["RoleARN"] == pipeline.role_arn
    # DescribeDeliveryStream never returns the access key: check what was sent.
    created = [params for name, params in calls if name == "CreateDeliveryStream"]
    assert len(created) == 1
    assert (
        created[0]["HttpEndpointDestinationConfiguration"]["EndpointConfiguration"]["AccessKey"]
        == pool.access_key
    )
    assert aws.client("logs").describe_log_groups(logGroupNamePrefix="/aws/kinesisfirehose/orders-to-shoal")[
        "logGroups"
    ]

    # The order that loses no change: the table streams only once Firehose is ACTIVE.
    ops = [name for name, _ in calls]
    first = {op: ops.index(op) for op in set(ops)}
    assert first["CreateStream"] < first["CreateBucket"] < first["CreateRole"] < first["CreateDeliveryStream"]
    enable = ops.index("EnableKinesisStreamingDestination")
    assert enable > first["CreateDeliveryStream"]
    assert "DescribeDeliveryStream" in ops[first["CreateDeliveryStream"] : enable]
    assert set(ops[enable + 1 :]) == {"DescribeKinesisStreamingDestination"}
    steps = pipeline.phase_steps()
    assert [s.key for s in sorted(steps, key=lambda s: s.finished_at)][-1] == "destination"


def _count(aws, pipeline) -> dict:
    return {
        "streams": len(aws.client("kinesis").list_streams()["StreamNames"]),
        "buckets": len(aws.client("s3").list_buckets()["Buckets"]),
        "roles": len(aws.client("iam").list_roles()["Roles"]),
        "firehoses": len(aws.client("firehose").list_delivery_streams()["DeliveryStreamNames"]),
        "policies": len(aws.client("iam").list_role_policies(RoleName=pipeline.role_name)["PolicyNames"]),
    }


def test_a_failed_step_is_retried_without_duplicating_anything(pool, aws, orders_table):
    pipeline = new_pipeline(pool, aws.connection)
    timing = fast_timing()
    # An error Firehose does not recover from, injected at CreateDeliveryStream (Stubber on the
    # Firehose client for this attempt only).
    firehose = Stubber(aws.client("firehose"))
    firehose.add_client_error(
        "describe_delivery_stream", "ResourceNotFoundException", "Firehose orders-to-shoal not found.", 400
    )
    firehose.add_client_error(
        "create_delivery_stream",
        "LimitExceededException",
        "You have reached the limit of delivery streams.",
        400,
    )
    with firehose:
        status = pipelines.run_inline(pipeline, "provision", aws=aws, timing=timing)
    assert status == Pipeline.Status.FAILED
    steps = {s.key: s for s in pipeline.phase_steps()}
    assert [steps[k].state for k in ("stream", "bucket", "role", "firehose", "destination")] == [
        "done",
        "done",
        "done",
        "failed",
        "pending",
    ]
    assert (
        "LimitExceededException" in steps["firehose"].error
        and "limit of delivery streams" in steps["firehose"].error
    )

    # Retry: resumes at the failed step; nothing before it runs again, nothing is created twice.
    calls = record_calls(aws)
    with streaming_enabled(aws):
        status = pipelines.run_inline(pipeline, "provision", aws=aws, timing=timing)
    assert status == Pipeline.Status.ACTIVE
    ops = [name for name, _ in calls]
    assert "CreateStream" not in ops and "CreateBucket" not in ops and "CreateRole" not in ops
    steps = {s.key: s for s in Pipeline.objects.get(pk=pipeline.pk).phase_steps()}
    assert (steps["stream"].attempts, steps["firehose"].attempts) == (1, 2)
    once = {"streams": 1, "buckets": 1, "roles": 1, "firehoses": 1, "policies": 1}
    assert _count(aws, pipeline) == once

    # Every ensure_ step looks before it creates: running them all again changes nothing.
    pipeline.refresh_from_db()
    for key in ("stream", "bucket", "role", "firehose"):
        registry.STEPS[key].ensure(pipeline, aws, timing)
    assert _count(aws, pipeline) == once
    pipeline.refresh_from_db()
    assert (
        pipeline.stream_created
        and pipeline.bucket_created
        and pipeline.role_created
        and pipeline.firehose_created
    )


def test_an_invalid_bucket_name_fails_clearly_and_the_fixed_run_completes(pool, aws, orders_table):
    pipeline = new_pipeline(pool, aws.connection, bucket_name="ab")  # too short: S3 refuses it
    timing = fast_timing()
    assert pipelines.run_inline(pipeline, "provision", aws=aws, timing=timing) == Pipeline.Status.FAILED
    bucket = pipeline.steps.get(phase="provision", key="bucket")
    assert bucket.state == "failed" and "InvalidBucketName" in bucket.error
    Pipeline.objects.filter(pk=pipeline.pk).update(bucket_name=f"shoal-fixed-{uuid.uuid4().hex[:8]}")
    pipeline.refresh_from_db()
    with streaming_enabled(aws):
        assert pipelines.run_inline(pipeline, "provision", aws=aws, timing=timing) == Pipeline.Status.ACTIVE
    assert _count(aws, pipeline)["streams"] == 1 and _count(aws, pipeline)["buckets"] == 1


def test_a_resource_of_the_same_name_that_is_not_ours_is_not_adopted(pool, aws, orders_table):
    aws.client("kinesis").create_stream(
        StreamName="orders-cdc", StreamModeDetails={"StreamMode": "ON_DEMAND"}
    )
    pipeline = new_pipeline(pool, aws.connection)
    with pytest.raises(AwsError) as raised:
        registry.STEPS["stream"].ensure(pipeline, aws, fast_timing())
    assert raised.value.kind == "conflict" and "already exists" in str(raised.value)
    pipeline.refresh_from_db()
    assert not pipeline.stream_created


def test_a_lost_response_is_recognised_by_the_tag(pool, aws, orders_table):
    """Created, but the process died before recording it: the tag says it is ours."""
    pipeline = new_pipeline(pool, aws.connection)
    kinesis = aws.client("kinesis")
    kinesis.create_stream(StreamName="orders-cdc", StreamModeDetails={"StreamMode": "ON_DEMAND"})
    kinesis.add_tags_to_stream(StreamName="orders-cdc", Tags={"shoal:pipeline": pipeline.uid})
    assert "created by an earlier attempt" in registry.STEPS["stream"].ensure(pipeline, aws, fast_timing())
    assert Pipeline.objects.get(pk=pipeline.pk).stream_created


def test_teardown_removes_only_what_shoal_created(pool, aws, orders_table):
    # The user's own stream; Shoal creates the bucket, role and Firehose stream.
    aws.client("kinesis").create_stream(
        StreamName="orders-cdc", StreamModeDetails={"StreamMode": "ON_DEMAND"}
    )
    pipeline = new_pipeline(pool, aws.connection, stream_new=False)
    timing = fast_timing()
    with streaming_enabled(aws):
        assert pipelines.run_inline(pipeline, "provision", aws=aws, timing=timing) == Pipeline.Status.ACTIVE
    pipeline.refresh_from_db()
    assert not pipeline.stream_created and pipeline.bucket_created
    aws.client("s3").put_object(Bucket=pipeline.bucket_name, Key="failed/2024/x", Body=b"{}")

    calls = record_calls(aws)
    with streaming_disabled(aws):
        assert pipelines.run_inline(pipeline, "teardown", aws=aws, timing=timing) == Pipeline.Status.REMOVED
    calls = list(calls)
    steps = {s.key: s for s in Pipeline.objects.get(pk=pipeline.pk).phase_steps()}
    assert list(steps) == list(registry.keys("teardown"))
    assert steps["stream"].state == "skipped" and "your stream" in steps["stream"].detail
    assert all(steps[k].state == "done" for k in ("firehose", "destination", "role", "bucket"))

    assert aws.client("firehose").list_delivery_streams()["DeliveryStreamNames"] == []
    assert aws.client("iam").list_roles()["Roles"] == []
    assert aws.client("s3").list_buckets()["Buckets"] == []
    assert not aws.client("logs").describe_log_groups(logGroupNamePrefix="/aws/kinesisfirehose/")["logGroups"]
    assert aws.client("kinesis").list_streams()["StreamNames"] == ["orders-cdc"]  # the user's: kept
    assert "DeleteStream" not in [name for name, _ in calls]
    # Teardown order: Firehose first, then the table's streaming, the stream, the role, the bucket.
    ops = [name for name, _ in calls]
    assert ops.index("DeleteDeliveryStream") < ops.index("DisableKinesisStreamingDestination")
    assert (
        ops.index("DisableKinesisStreamingDestination") < ops.index("DeleteRole") < ops.index("DeleteBucket")
    )
    # The pool can be connected again.
    assert pool.aws_pipelines.current() is None


def test_teardown_can_keep_the_bucket_and_its_failed_deliveries(pool, aws, orders_table):
    pipeline = new_pipeline(pool, aws.connection)
    with streaming_enabled(aws):
        pipelines.run_inline(pipeline, "provision", aws=aws, timing=fast_timing())
    Pipeline.objects.filter(pk=pipeline.pk).update(keep_bucket=True)
    pipeline.refresh_from_db()
    with streaming_disabled(aws):
        assert pipelines.run_inline(pipeline, "teardown", aws=aws, timing=fast_timing()) == "removed"
    assert [b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]] == [pipeline.bucket_name]
    assert aws.client("kinesis").list_streams()["StreamNames"] == []


def test_firehose_creation_waits_out_iam_eventual_consistency(pool, aws):
    """A new role is not usable at once: CreateDeliveryStream is retried on those
    messages only. moto simulates no delay, so the Firehose client is stubbed for this test."""
    pipeline = new_pipeline(pool, aws.connection)
    pipeline.stream_arn = STREAM_ARN
    pipeline.role_arn = f"arn:aws:iam::{ACCOUNT}:role/shoal-firehose-orders-to-shoal"
    slept: list[float] = []
    timing = fast_timing()
    timing.sleep = slept.append
    stubber = Stubber(aws.client("firehose"))
    stubber.add_client_error("describe_delivery_stream", "ResourceNotFoundException", "not found", 400)
    for message in (
        "Firehose is unable to assume role arn:aws:iam::123456789012:role/x. Please check the role provided.",
        "The security token included in the request is invalid. Ensure that the provided IAM role "
        "associated with firehose is not deleted.",
    ):
        stubber.add_client_error("create_delivery_stream", "InvalidArgumentException", message, 400)
    arn = f"arn:aws:firehose:us-east-1:{ACCOUNT}:deliverystream/orders-to-shoal"
    stubber.add_response("create_delivery_stream", {"DeliveryStreamARN": arn})
    stubber.add_response(
        "describe_delivery_stream",
        {
            "DeliveryStreamDescription": {
                "DeliveryStreamName": "orders-to-shoal",
                "DeliveryStreamARN": arn,
                "DeliveryStreamStatus": "ACTIVE",
                "DeliveryStreamType": "KinesisStreamAsSource",
                "VersionId": "1",
                "Destinations": [],
                "HasMoreDestinations": False,
            }
        },
    )
    with stubber:
        assert "Created orders-to-shoal" in registry.STEPS["firehose"].ensure(pipeline, aws, timing)
    assert slept[:2] == [1, 2]

    # Any other InvalidArgumentException fails at once.
    stubber = Stubber(aws.client("firehose"))
    stubber.add_client_error("describe_delivery_stream", "ResourceNotFoundException", "not found", 400)
    stubber.add_client_error("create_delivery_stream", "InvalidArgumentException", "Url must be https", 400)
    Pipeline.objects.filter(pk=pipeline.pk).update(firehose_created=False)
    pipeline.firehose_created = False
    with stubber, pytest.raises(Exception, match="Url must be https"):
        registry.STEPS["firehose"].ensure(pipeline, aws, timing)


def test_buckets_follow_the_location_constraint_rule(pool, moto):
    from pools.aws.clients import connect

    assert create_bucket_kwargs("us-east-1") == {}
    assert create_bucket_kwargs("eu-west-1") == {
        "CreateBucketConfiguration": {"LocationConstraint": "eu-west-1"}
    }
    eu = connect(make_connection(moto.url, region="eu-west-1"))
    pipeline = new_pipeline(pool, eu.connection, bucket_name="shoal-failed-eu-test")
    registry.STEPS["bucket"].ensure(pipeline, eu, fast_timing())
    assert (
        eu.client("s3").get_bucket_location(Bucket="shoal-failed-eu-test")["LocationConstraint"]
        == "eu-west-1"
    )


def test_the_emulators_missing_call_is_skipped_in_the_sandbox_only(pool, aws, orders_table):
    """Against moto (an emulator connection) the streaming step says plainly that the relay stands
    in; the same 500 from a connection without an endpoint URL would fail the step."""
    pipeline = new_pipeline(pool, aws.connection)
    status = pipelines.run_inline(pipeline, "provision", aws=aws, timing=fast_timing())
    assert status == Pipeline.Status.ACTIVE
    step = pipeline.steps.get(phase="provision", key="destination")
    assert step.state == "skipped" and "relay" in step.detail and "not implemented" in step.detail
    pipeline.refresh_from_db()
    assert (
        pipeline.destination_emulated and pipeline.destination_enabled_at and not pipeline.destination_created
    )

    aws.connection.endpoint_url = ""  # pretend this were AWS: the error is not excused
    with pytest.raises(Exception):  # noqa: B017 (botocore's ClientError from moto's 500)
        registry.STEPS["destination"].ensure(pipeline, aws, fast_timing())
