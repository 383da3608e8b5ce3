"""Step "destination": the table's Kinesis streaming destination, turned on last, once Firehose is
ACTIVE. The local emulator cannot stream a table; there the sandbox relay stands in."""

from __future__ import annotations

from botocore.exceptions import ClientError
from django.db import transaction
from django.utils import timezone

from pools.aws import errors
from pools.aws.clients import Aws
from pools.aws.errors import AwsError
from pools.aws.models import Pipeline, SandboxRelay
from pools.aws.provisioning.base import DEFAULT_TIMING, StepSkipped, Timing, save_fields, wait_until

# Calls a local emulator (moto 5.2) does not implement: it answers HTTP 500.
EMULATOR_GAPS = {
    "EnableKinesisStreamingDestination",
    "DescribeKinesisStreamingDestination",
    "DisableKinesisStreamingDestination",
    "UpdateKinesisStreamingDestination",
}
EMULATOR_GAP_TEXT = (
    "The local AWS emulator cannot stream a DynamoDB table to Kinesis "
    "(EnableKinesisStreamingDestination is not implemented in moto). In the sandbox, the relay "
    "(manage.py demo_relay) reads the table's DynamoDB stream and delivers its changes to this "
    "pool as Firehose would. Against AWS this step enables the streaming destination."
)


def emulator_lacks(aws: Aws, exc: BaseException) -> bool:
    """The emulator answered a call it does not implement (moto: HTTP 500 with an HTML page)."""
    return (
        aws.connection.is_emulator
        and isinstance(exc, ClientError)
        and exc.operation_name in EMULATOR_GAPS
        and errors.http_status(exc) in (500, 501)
    )


def find_destination(aws: Aws, pipeline: Pipeline) -> dict | None:
    found = aws.client("dynamodb").describe_kinesis_streaming_destination(TableName=pipeline.table_name)
    for dest in found.get("KinesisDataStreamDestinations", []):
        if dest.get("StreamArn") == pipeline.stream_arn:
            return dest
    return None


def ensure_destination(pipeline: Pipeline, aws: Aws, timing: Timing = DEFAULT_TIMING) -> str:
    """Last, once Firehose is ACTIVE: Firehose reads Kinesis from LATEST, so a change streamed
    before it would never reach the pool."""
    if not pipeline.stream_arn:
        raise AwsError("config", "The Kinesis data stream's ARN is not known yet; run the stream step first.")
    if not pipeline.pulls and pipeline.firehose_name and not pipeline.firehose_arn:
        raise AwsError("config", "The Firehose stream is not ACTIVE yet; run the Firehose step first.")
    ddb = aws.client("dynamodb")
    try:
        current = find_destination(aws, pipeline)
    except ClientError as exc:
        if emulator_lacks(aws, exc):
            if not pipeline.destination_emulated:
                with transaction.atomic():
                    pipeline.sandbox_relay, _ = SandboxRelay.objects.update_or_create(
                        pipeline=pipeline, defaults={"emulated": True}
                    )
                    save_fields(pipeline, destination_enabled_at=timezone.now())
            raise StepSkipped(EMULATOR_GAP_TEXT) from exc
        raise
    status = (current or {}).get("DestinationStatus", "")
    if status in ("ACTIVE", "ENABLING", "UPDATING"):
        detail = (
            "Streaming enabled by Shoal."
            if pipeline.destination_created
            else "The table already streamed to this stream (enabled outside Shoal; teardown keeps it)."
        )
    else:
        ddb.enable_kinesis_streaming_destination(
            TableName=pipeline.table_name,
            StreamArn=pipeline.stream_arn,
            EnableKinesisStreamingConfiguration={"ApproximateCreationDateTimePrecision": pipeline.precision},
        )
        save_fields(pipeline, destination_created=True, destination_enabled_at=timezone.now())
        detail = (
            f"Enabled streaming of {pipeline.table_name} to {pipeline.stream_name} "
            f"({pipeline.precision} timestamps)."
        )

    def active() -> bool:
        dest = find_destination(aws, pipeline) or {}
        if dest.get("DestinationStatus") == "ENABLE_FAILED":
            raise AwsError(
                "aws", f"DynamoDB could not enable streaming: {dest.get('DestinationStatusDescription', '')}"
            )
        return dest.get("DestinationStatus") == "ACTIVE"

    wait_until(
        "the table's Kinesis streaming destination to be ACTIVE",
        active,
        timeout=timing.destination_wait_seconds,
        interval=timing.poll_seconds,
        timing=timing,
    )
    return f"{detail} ACTIVE."


def describe(pipeline: Pipeline, aws: Aws) -> dict | None:
    return find_destination(aws, pipeline)


def remove_destination(pipeline: Pipeline, aws: Aws, timing: Timing = DEFAULT_TIMING) -> str:
    if pipeline.destination_emulated and not pipeline.destination_created:
        raise StepSkipped("The sandbox relay stood in for streaming; it stops with the pipeline.")
    if not pipeline.destination_created:
        raise StepSkipped("Shoal did not enable the table's streaming; it is left as it is.")
    ddb = aws.client("dynamodb")
    dest = find_destination(aws, pipeline)
    if dest is None or dest.get("DestinationStatus") == "DISABLED":
        return "The table no longer streamed to this Kinesis stream."
    if dest.get("DestinationStatus") != "DISABLING":
        ddb.disable_kinesis_streaming_destination(
            TableName=pipeline.table_name, StreamArn=pipeline.stream_arn
        )
    wait_until(
        "the table's Kinesis streaming destination to be DISABLED",
        lambda: (find_destination(aws, pipeline) or {}).get("DestinationStatus", "DISABLED") == "DISABLED",
        timeout=timing.destination_wait_seconds,
        interval=timing.poll_seconds,
        timing=timing,
    )
    return f"Stopped streaming {pipeline.table_name} to {pipeline.stream_name}."
