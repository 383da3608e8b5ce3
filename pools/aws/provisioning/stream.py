"""Step "stream": the Kinesis data stream the table streams its changes into (on-demand capacity)."""

from __future__ import annotations

from botocore.exceptions import ClientError, WaiterError

from pools.aws.clients import Aws
from pools.aws.errors import AwsError, error_code
from pools.aws.models import Pipeline
from pools.aws.provisioning.base import (
    DEFAULT_TIMING,
    StepSkipped,
    Timing,
    is_tagged,
    save_fields,
    wait_until,
)


def stream_summary(aws: Aws, name: str) -> dict | None:
    try:
        return aws.client("kinesis").describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def ensure_stream(pipeline: Pipeline, aws: Aws, timing: Timing = DEFAULT_TIMING) -> str:
    kinesis = aws.client("kinesis")
    name = pipeline.stream_name
    summary = stream_summary(aws, name)
    if summary is None:
        if not pipeline.stream_new:
            raise AwsError(
                "not_found", f"The Kinesis data stream {name} does not exist in {aws.region}; choose another."
            )
        kinesis.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
        save_fields(pipeline, stream_created=True)
        kinesis.add_tags_to_stream(StreamName=name, Tags=pipeline.tags())
        detail = f"Created {name} (on-demand capacity)."
    elif pipeline.stream_new and not pipeline.stream_created:
        if not is_tagged(kinesis.list_tags_for_stream(StreamName=name).get("Tags", []), pipeline):
            raise AwsError(
                "conflict",
                f"A Kinesis data stream named {name} already exists and was not created for this "
                "pipeline. Start again and choose it as an existing stream, or pick another name.",
            )
        save_fields(pipeline, stream_created=True)
        detail = f"Found {name}, created by an earlier attempt."
    else:
        detail = f"Using {'the stream Shoal created' if pipeline.stream_created else 'your stream'} {name}."
    if summary and summary["StreamStatus"] == "DELETING":
        raise AwsError("aws", f"The Kinesis data stream {name} is being deleted; wait, then retry.")

    def active() -> bool:
        nonlocal summary
        summary = stream_summary(aws, name)
        if summary is None:
            raise AwsError("not_found", f"The Kinesis data stream {name} disappeared.")
        return summary["StreamStatus"] == "ACTIVE"

    wait_until(
        f"the Kinesis data stream {name} to be ACTIVE",
        active,
        timeout=timing.stream_wait_seconds,
        interval=timing.poll_seconds,
        timing=timing,
    )
    mode = (summary.get("StreamModeDetails") or {}).get("StreamMode", "")
    save_fields(pipeline, stream_arn=summary["StreamARN"])
    return f"{detail} ACTIVE{f', {mode}' if mode else ''}, {summary.get('OpenShardCount', '?')} shards."


def describe(pipeline: Pipeline, aws: Aws) -> dict | None:
    return stream_summary(aws, pipeline.stream_name)


def remove_stream(pipeline: Pipeline, aws: Aws, timing: Timing = DEFAULT_TIMING) -> str:
    if not pipeline.stream_created:
        raise StepSkipped(f"{pipeline.stream_name} is your stream; it is left in place.")
    kinesis = aws.client("kinesis")
    try:
        kinesis.delete_stream(StreamName=pipeline.stream_name, EnforceConsumerDeletion=True)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return f"{pipeline.stream_name} was already gone."
        raise
    try:
        kinesis.get_waiter("stream_not_exists").wait(
            StreamName=pipeline.stream_name,
            WaiterConfig={"Delay": max(1, int(timing.poll_seconds)), "MaxAttempts": 60},
        )
    except WaiterError as exc:
        raise AwsError("aws", f"{pipeline.stream_name} is still being deleted: {exc}") from exc
    return f"Deleted {pipeline.stream_name}."
