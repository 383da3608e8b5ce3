"""Step "firehose": the Firehose stream that reads the Kinesis stream and delivers to the pool's
endpoint, with its CloudWatch log group; failed batches go to the bucket."""

from __future__ import annotations

import logging
import time

from botocore.exceptions import ClientError

from pools.aws.clients import Aws
from pools.aws.errors import AwsError, error_code
from pools.aws.models import Pipeline
from pools.aws.provisioning.base import (
    DEFAULT_TIMING,
    StepSkipped,
    Timing,
    is_tagged,
    parse_arn,
    save_fields,
    tag_list,
    wait_until,
)

log = logging.getLogger(__name__)

LOG_STREAM_NAME = "HttpEndpointDelivery"
# Messages of CreateDeliveryStream while a new role is not usable yet.
IAM_PROPAGATION_MESSAGES = (
    "unable to assume role",
    "is not authorized to perform",
    "verify that the iam role has access",
    "security token included in the request is invalid",
)


def log_group_name(pipeline: Pipeline) -> str:
    return pipeline.log_group or f"/aws/kinesisfirehose/{pipeline.firehose_name}"


def firehose_destination(pipeline: Pipeline, access_key: str) -> dict:
    """HttpEndpointDestinationConfiguration as the guide's Step 3 sets it up."""
    return {
        "EndpointConfiguration": {
            "Url": pipeline.endpoint_url,
            "Name": pipeline.http_endpoint_name,
            "AccessKey": access_key,
        },
        "BufferingHints": {
            "SizeInMBs": pipeline.buffer_size_mib,
            "IntervalInSeconds": pipeline.buffer_interval_s,
        },
        "RequestConfiguration": {
            "ContentEncoding": pipeline.content_encoding,
            "CommonAttributes": [{"AttributeName": "shoal-pool", "AttributeValue": pipeline.pool.name}],
        },
        "RetryOptions": {"DurationInSeconds": pipeline.retry_duration_s},
        "S3BackupMode": "FailedDataOnly",
        "RoleARN": pipeline.role_arn,
        "S3Configuration": {
            "RoleARN": pipeline.role_arn,
            "BucketARN": f"arn:{parse_arn(pipeline.role_arn)['partition']}:s3:::{pipeline.bucket_name}",
            "Prefix": pipeline.backup_prefix,
            "ErrorOutputPrefix": pipeline.error_prefix,
            "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 300},
            "CompressionFormat": "UNCOMPRESSED",
        },
        "CloudWatchLoggingOptions": {
            "Enabled": True,
            "LogGroupName": log_group_name(pipeline),
            "LogStreamName": LOG_STREAM_NAME,
        },
    }


def firehose_params(pipeline: Pipeline, access_key: str) -> dict:
    return {
        "DeliveryStreamName": pipeline.firehose_name,
        "DeliveryStreamType": "KinesisStreamAsSource",
        "KinesisStreamSourceConfiguration": {
            "KinesisStreamARN": pipeline.stream_arn,
            "RoleARN": pipeline.role_arn,
        },
        "HttpEndpointDestinationConfiguration": firehose_destination(pipeline, access_key),
        "Tags": tag_list(pipeline),
    }


def describe_firehose(aws: Aws, name: str) -> dict | None:
    try:
        return aws.client("firehose").describe_delivery_stream(DeliveryStreamName=name)[
            "DeliveryStreamDescription"
        ]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def _ensure_log_group(pipeline: Pipeline, aws: Aws) -> None:
    logs = aws.client("logs")
    name = log_group_name(pipeline)
    try:
        logs.create_log_group(logGroupName=name, tags=pipeline.tags())
        save_fields(pipeline, log_group=name, log_group_created=True)
    except ClientError as exc:
        if error_code(exc) != "ResourceAlreadyExistsException":
            raise
        if not pipeline.log_group:
            save_fields(pipeline, log_group=name)
    try:
        logs.create_log_stream(logGroupName=name, logStreamName=LOG_STREAM_NAME)
    except ClientError as exc:
        if error_code(exc) != "ResourceAlreadyExistsException":
            raise


def _create_firehose(pipeline: Pipeline, aws: Aws, timing: Timing) -> None:
    """CreateDeliveryStream, retried while a new IAM role is not usable yet."""
    firehose = aws.client("firehose")
    params = firehose_params(pipeline, pipeline.pool.access_key)
    deadline = time.monotonic() + timing.iam_retry_seconds
    attempt = 0
    while True:
        try:
            firehose.create_delivery_stream(**params)
            return
        except ClientError as exc:
            code = error_code(exc)
            if code == "ResourceInUseException":
                return  # an earlier attempt's response was lost; the caller checks what exists
            message = str(exc).lower()
            retryable = code == "InvalidArgumentException" and any(
                m in message for m in IAM_PROPAGATION_MESSAGES
            )
            if not retryable or time.monotonic() >= deadline:
                raise
            pause = min(2**attempt, 20)
            log.info(
                "firehose %s: role not usable yet (%s); retrying in %s s", pipeline.firehose_name, code, pause
            )
            timing.sleep(pause)
            attempt += 1


def _source_arn(description: dict) -> str:
    source = (description.get("Source") or {}).get("KinesisStreamSourceDescription") or {}
    return source.get("KinesisStreamARN", "")


def _drift(pipeline: Pipeline, description: dict) -> list[str]:
    """Endpoint settings that differ from the pipeline's (the access key is never returned)."""
    found = []
    dest = (description.get("Destinations") or [{}])[0].get("HttpEndpointDestinationDescription") or {}
    endpoint = dest.get("EndpointConfiguration") or {}
    if endpoint.get("Url") != pipeline.endpoint_url:
        found.append(f"delivered to {endpoint.get('Url') or 'another destination'}")
    hints = dest.get("BufferingHints") or {}
    if (hints.get("SizeInMBs"), hints.get("IntervalInSeconds")) != (
        pipeline.buffer_size_mib,
        pipeline.buffer_interval_s,
    ):
        found.append("buffering hints differed")
    if (dest.get("RetryOptions") or {}).get("DurationInSeconds") != pipeline.retry_duration_s:
        found.append("retry duration differed")
    return found


def update_firehose_endpoint(pipeline: Pipeline, aws: Aws, description: dict) -> None:
    """Send the current URL, access key and buffering settings to an existing stream of ours."""
    dest = firehose_destination(pipeline, pipeline.pool.access_key)
    update = {
        k: dest[k]
        for k in ("EndpointConfiguration", "BufferingHints", "RequestConfiguration", "RetryOptions")
    }
    update["RoleARN"] = pipeline.role_arn
    aws.client("firehose").update_destination(
        DeliveryStreamName=pipeline.firehose_name,
        CurrentDeliveryStreamVersionId=description["VersionId"],
        DestinationId=description["Destinations"][0]["DestinationId"],
        HttpEndpointDestinationUpdate=update,
    )


def ensure_firehose(
    pipeline: Pipeline, aws: Aws, timing: Timing = DEFAULT_TIMING, *, push_endpoint: bool = False
) -> str:
    """The Firehose stream, ACTIVE. With push_endpoint, also re-send URL and access key (after a key
    rotation: AWS never returns the key, so a drift check cannot see it)."""
    if not (pipeline.stream_arn and pipeline.role_arn):
        raise AwsError("config", "The stream and role ARNs are not known yet; run the earlier steps first.")
    name = pipeline.firehose_name
    _ensure_log_group(pipeline, aws)
    description = _ours_or_none(pipeline, aws, timing, describe_firehose(aws, name))
    if description is None:
        _create_firehose(pipeline, aws, timing)
        save_fields(pipeline, firehose_created=True)
        detail = f"Created {name}: {pipeline.stream_name} → {pipeline.endpoint_url}."
    else:
        detail = _reconcile(pipeline, aws, description, push_endpoint=push_endpoint)
    arn = _wait_active(aws, name, timing)
    save_fields(pipeline, firehose_arn=arn)
    return f"{detail} ACTIVE."


def _ours_or_none(pipeline: Pipeline, aws: Aws, timing: Timing, description: dict | None) -> dict | None:
    """The existing stream's description if it is this pipeline's to use; None if there is none
    (a stream whose creation failed is deleted first: it never recovers); a conflict otherwise."""
    name = pipeline.firehose_name
    if description is not None and not pipeline.firehose_created:
        tags = aws.client("firehose").list_tags_for_delivery_stream(DeliveryStreamName=name).get("Tags", [])
        if not is_tagged(tags, pipeline):
            raise AwsError(
                "conflict",
                f"A Firehose stream named {name} already exists and was not created for this pipeline. "
                "Start again with another Firehose stream name.",
            )
        save_fields(pipeline, firehose_created=True)
    if description is not None and description["DeliveryStreamStatus"] == "CREATING_FAILED":
        aws.client("firehose").delete_delivery_stream(DeliveryStreamName=name, AllowForceDelete=True)
        wait_until(
            f"the failed Firehose stream {name} to be deleted",
            lambda: describe_firehose(aws, name) is None,
            timeout=timing.firehose_delete_wait_seconds,
            interval=timing.firehose_poll_seconds,
            timing=timing,
        )
        return None
    return description


def _reconcile(pipeline: Pipeline, aws: Aws, description: dict, *, push_endpoint: bool) -> str:
    """An existing stream of this pipeline: it must read the pipeline's Kinesis stream; what
    drifted from the pipeline's settings (or, with push_endpoint, URL and key) is sent again."""
    name = pipeline.firehose_name
    source = _source_arn(description)
    if source != pipeline.stream_arn:
        raise AwsError(
            "conflict",
            f"The Firehose stream {name} reads {source or 'another source'}, not "
            f"{pipeline.stream_arn}. Start again with another Firehose stream name.",
        )
    drift = _drift(pipeline, description)
    if not (drift or push_endpoint):
        return f"Found {name}, configured as asked."
    if description["DeliveryStreamStatus"] != "ACTIVE":
        return f"Found {name}; it will be checked again once ACTIVE."
    update_firehose_endpoint(pipeline, aws, description)
    return f"Updated {name} ({'; '.join(drift) or 'endpoint URL and access key sent again'})."


def _wait_active(aws: Aws, name: str, timing: Timing) -> str:
    """Wait for the stream to be ACTIVE; returns its ARN. A failed creation is an error."""
    state: dict = {}

    def active() -> bool:
        state["d"] = describe_firehose(aws, name)
        if state["d"] is None:
            return False
        status = state["d"]["DeliveryStreamStatus"]
        if status == "CREATING_FAILED":
            failure = state["d"].get("FailureDescription") or {}
            raise AwsError(
                "aws",
                f"Firehose could not create {name}: "
                f"{failure.get('Type', '')} {failure.get('Details', '')}".strip(),
            )
        return status == "ACTIVE"

    wait_until(
        f"the Firehose stream {name} to be ACTIVE",
        active,
        timeout=timing.firehose_wait_seconds,
        interval=timing.firehose_poll_seconds,
        timing=timing,
    )
    return state["d"]["DeliveryStreamARN"]


def describe(pipeline: Pipeline, aws: Aws) -> dict | None:
    return describe_firehose(aws, pipeline.firehose_name)


def remove_firehose(pipeline: Pipeline, aws: Aws, timing: Timing = DEFAULT_TIMING) -> str:
    if not pipeline.firehose_created:
        raise StepSkipped("Shoal did not create a Firehose stream.")
    firehose = aws.client("firehose")
    name = pipeline.firehose_name
    description = describe_firehose(aws, name)
    if description is not None:
        if description["DeliveryStreamStatus"] == "CREATING":
            wait_until(
                f"the Firehose stream {name} to finish creating (it cannot be deleted before)",
                lambda: (describe_firehose(aws, name) or {}).get("DeliveryStreamStatus") != "CREATING",
                timeout=timing.firehose_wait_seconds,
                interval=timing.firehose_poll_seconds,
                timing=timing,
            )
        force = description["DeliveryStreamStatus"] == "DELETING_FAILED"
        try:
            firehose.delete_delivery_stream(DeliveryStreamName=name, AllowForceDelete=force)
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
        wait_until(
            f"the Firehose stream {name} to be deleted",
            lambda: describe_firehose(aws, name) is None,
            timeout=timing.firehose_delete_wait_seconds,
            interval=timing.firehose_poll_seconds,
            timing=timing,
        )
        detail = f"Deleted {name}."
    else:
        detail = f"{name} was already gone."
    if pipeline.log_group_created:
        try:
            aws.client("logs").delete_log_group(logGroupName=pipeline.log_group)
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
        detail += f" Deleted the log group {pipeline.log_group}."
    return detail
