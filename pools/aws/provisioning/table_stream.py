"""Step "table_stream": the table's DynamoDB stream (NEW_AND_OLD_IMAGES), which Shoal's reader
pulls in the "DynamoDB Streams pull" mode (pools/pull/): no Kinesis, no Firehose, no public
endpoint. A stream already on with both images is used as it is; one with other images cannot be
changed in place (DynamoDB allows one stream view at a time), so the step says how to proceed."""

from __future__ import annotations

from django.utils import timezone

from pools.aws.clients import Aws
from pools.aws.errors import AwsError
from pools.aws.models import Pipeline
from pools.aws.provisioning.base import DEFAULT_TIMING, StepSkipped, Timing, save_fields, wait_until

VIEW_TYPE = "NEW_AND_OLD_IMAGES"


def _table(aws: Aws, pipeline: Pipeline) -> dict:
    return aws.client("dynamodb").describe_table(TableName=pipeline.table_name)["Table"]


def ensure_table_stream(pipeline: Pipeline, aws: Aws, timing: Timing = DEFAULT_TIMING) -> str:
    table = _table(aws, pipeline)
    spec = table.get("StreamSpecification") or {}
    if spec.get("StreamEnabled"):
        if spec.get("StreamViewType") != VIEW_TYPE:
            raise AwsError(
                "conflict",
                f"The table {pipeline.table_name} already has a stream with {spec.get('StreamViewType')}; "
                f"Shoal needs {VIEW_TYPE} (the item before and after each change). Turn that stream "
                "off (Exports and streams → DynamoDB stream details) if nothing else reads it, or "
                "choose Kinesis pull.",
            )
        detail = f"{pipeline.table_name}'s stream was already on ({VIEW_TYPE})."
    else:
        aws.client("dynamodb").update_table(
            TableName=pipeline.table_name,
            StreamSpecification={"StreamEnabled": True, "StreamViewType": VIEW_TYPE},
        )
        save_fields(pipeline, table_stream_created=True)
        detail = f"Turned on {pipeline.table_name}'s stream ({VIEW_TYPE})."

    def on() -> bool:
        nonlocal table
        table = _table(aws, pipeline)
        return bool(table.get("LatestStreamArn")) and table.get("TableStatus") == "ACTIVE"

    wait_until(
        f"{pipeline.table_name}'s stream to be on",
        on,
        timeout=timing.stream_wait_seconds,
        interval=timing.poll_seconds,
        timing=timing,
    )
    if pipeline.destination_enabled_at is None:
        # The table streams to Shoal from now on: "Backfill existing items" may start after this.
        save_fields(pipeline, destination_enabled_at=timezone.now())
    return f"{detail} Shoal reads it from its oldest record: {table['LatestStreamArn']}."


def describe(pipeline: Pipeline, aws: Aws) -> dict | None:
    table = _table(aws, pipeline)
    spec = table.get("StreamSpecification") or {}
    if not spec.get("StreamEnabled"):
        return None
    return {"StreamArn": table.get("LatestStreamArn", ""), "StreamViewType": spec.get("StreamViewType", "")}


def remove_table_stream(pipeline: Pipeline, aws: Aws, timing: Timing = DEFAULT_TIMING) -> str:
    if not pipeline.table_stream_created:
        raise StepSkipped(f"{pipeline.table_name}'s stream was on before Shoal; it is left on.")
    spec = _table(aws, pipeline).get("StreamSpecification") or {}
    if not spec.get("StreamEnabled"):
        return f"{pipeline.table_name}'s stream was already off."
    aws.client("dynamodb").update_table(
        TableName=pipeline.table_name, StreamSpecification={"StreamEnabled": False}
    )
    return f"Turned off {pipeline.table_name}'s stream."
