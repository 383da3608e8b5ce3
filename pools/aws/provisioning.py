"""Provisioning and teardown of a pipeline as idempotent steps (spec/aws-provisioning.md §3).

Every `ensure_…` first looks up what exists, so a step can be re-run after any failure without
duplicating anything: a resource Shoal created is recognised by the flag recorded right after its
creation or, if the process died before that, by the `shoal:pipeline` tag it carries. A resource
with the same name that is neither is someone else's: the step stops and says so, rather than
adopting (and one day deleting) it.

Each function takes the pipeline, the boto3 clients (clients.Aws) and the waits (Timing), returns a
one-line account of what it found or did, and raises errors.AwsError (or a botocore error) when it
cannot go on, or StepSkipped when there is nothing to do.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from botocore.exceptions import ClientError, WaiterError
from django.utils import timezone

from pools.aws import errors
from pools.aws.clients import Aws
from pools.aws.errors import AwsError, error_code
from pools.aws.models import Pipeline, PipelineStep

log = logging.getLogger(__name__)

FIREHOSE_POLICY_NAME = "shoal-firehose-delivery"
LOG_STREAM_NAME = "HttpEndpointDelivery"
# Messages of CreateDeliveryStream while a new role is not usable yet (spec §3.7).
IAM_PROPAGATION_MESSAGES = (
    "unable to assume role",
    "is not authorized to perform",
    "verify that the iam role has access",
    "security token included in the request is invalid",
)
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


class StepSkipped(Exception):
    """Nothing to do for this step (not Shoal's resource, or not possible in the emulator)."""


@dataclass
class Timing:
    """How long steps wait and how often they look (short in tests; moto is instant)."""

    poll_seconds: float = 5.0
    stream_wait_seconds: float = 600.0
    firehose_poll_seconds: float = 10.0
    firehose_wait_seconds: float = 1200.0  # Terraform waits up to 20 minutes too
    firehose_delete_wait_seconds: float = 300.0
    destination_wait_seconds: float = 900.0
    iam_retry_seconds: float = 120.0
    sleep: Callable[[float], None] = field(default=time.sleep)


DEFAULT_TIMING = Timing()


# --- helpers ------------------------------------------------------------------------------------


def _save(pipeline: Pipeline, **fields) -> None:
    for name, value in fields.items():
        setattr(pipeline, name, value)
    pipeline.save(update_fields=[*fields, "updated_at"])


def _tagged(tags, pipeline: Pipeline) -> bool:
    """True when the tags (a list of Key/Value dicts or a dict) carry this pipeline's id."""
    if isinstance(tags, dict):
        return tags.get("shoal:pipeline") == pipeline.uid
    return any(t.get("Key") == "shoal:pipeline" and t.get("Value") == pipeline.uid for t in tags or [])


def _tag_list(pipeline: Pipeline) -> list[dict]:
    return [{"Key": k, "Value": v} for k, v in pipeline.tags().items()]


def _wait(what: str, check: Callable[[], bool], *, timeout: float, interval: float, timing: Timing) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            raise AwsError("aws", f"Timed out after {timeout:.0f} s waiting for {what}.")
        timing.sleep(interval)


def parse_arn(arn: str) -> dict:
    """partition, service, region, account and resource of an ARN."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise AwsError("config", f"{arn!r} is not an ARN")
    return dict(zip(("arn", "partition", "service", "region", "account", "resource"), parts, strict=True))


def emulator_lacks(aws: Aws, exc: BaseException) -> bool:
    """The emulator answered a call it does not implement (moto: HTTP 500 with an HTML page)."""
    return (
        aws.connection.is_emulator
        and isinstance(exc, ClientError)
        and exc.operation_name in EMULATOR_GAPS
        and errors.http_status(exc) in (500, 501)
    )


# --- 1. Kinesis data stream ---------------------------------------------------------------------


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
        _save(pipeline, stream_created=True)
        kinesis.add_tags_to_stream(StreamName=name, Tags=pipeline.tags())
        detail = f"Created {name} (on-demand capacity)."
    elif pipeline.stream_new and not pipeline.stream_created:
        if not _tagged(kinesis.list_tags_for_stream(StreamName=name).get("Tags", []), pipeline):
            raise AwsError(
                "conflict",
                f"A Kinesis data stream named {name} already exists and was not created for this "
                "pipeline. Start again and choose it as an existing stream, or pick another name.",
            )
        _save(pipeline, stream_created=True)
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

    _wait(
        f"the Kinesis data stream {name} to be ACTIVE",
        active,
        timeout=timing.stream_wait_seconds,
        interval=timing.poll_seconds,
        timing=timing,
    )
    mode = (summary.get("StreamModeDetails") or {}).get("StreamMode", "")
    _save(pipeline, stream_arn=summary["StreamARN"])
    return f"{detail} ACTIVE{f', {mode}' if mode else ''}, {summary.get('OpenShardCount', '?')} shards."


# --- 2. S3 bucket for failed deliveries ---------------------------------------------------------


def _bucket_exists(aws: Aws, name: str) -> bool:
    try:
        aws.client("s3").head_bucket(Bucket=name)
        return True
    except ClientError as exc:
        status = errors.http_status(exc)
        if status == 404 or error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
            return False
        if status == 403:
            raise AwsError(
                "access_denied",
                f"The S3 bucket {name} exists but these credentials cannot use it (403): it belongs "
                "to another account, or s3:ListBucket is missing.",
                code="403",
            ) from exc
        raise


def _bucket_tags(aws: Aws, name: str) -> list[dict]:
    try:
        return aws.client("s3").get_bucket_tagging(Bucket=name).get("TagSet", [])
    except ClientError as exc:
        if error_code(exc) in ("NoSuchTagSet", "NoSuchTagSetError"):
            return []
        raise


def create_bucket_kwargs(region: str) -> dict:
    """The LocationConstraint rule (spec §3.4): none in us-east-1, the region everywhere else."""
    return {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}


def ensure_bucket(pipeline: Pipeline, aws: Aws, timing: Timing = DEFAULT_TIMING) -> str:
    s3 = aws.client("s3")
    name = pipeline.bucket_name
    if not _bucket_exists(aws, name):
        if not pipeline.bucket_new:
            raise AwsError("not_found", f"The S3 bucket {name} does not exist; choose another.")
        try:
            s3.create_bucket(Bucket=name, **create_bucket_kwargs(aws.region))
        except ClientError as exc:
            code = error_code(exc)
            if code == "BucketAlreadyExists":
                raise AwsError(
                    "conflict",
                    f"The bucket name {name} is taken by another AWS account (bucket names are "
                    "global). Start again with another name.",
                    code=code,
                ) from exc
            if code != "BucketAlreadyOwnedByYou":
                raise
        _save(pipeline, bucket_created=True)
        detail = f"Created {name} in {aws.region}."
    elif pipeline.bucket_new and not pipeline.bucket_created:
        if not _tagged(_bucket_tags(aws, name), pipeline):
            raise AwsError(
                "conflict",
                f"An S3 bucket named {name} already exists and was not created for this pipeline. "
                "Start again and choose it as an existing bucket, or pick another name.",
            )
        _save(pipeline, bucket_created=True)
        detail = f"Found {name}, created by an earlier attempt."
    else:
        detail = f"Using {'the bucket Shoal created' if pipeline.bucket_created else 'your bucket'} {name}."
    if pipeline.bucket_created:
        s3.put_public_access_block(
            Bucket=name,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _tag_list(pipeline)})
    s3.get_waiter("bucket_exists").wait(
        Bucket=name, WaiterConfig={"Delay": max(1, int(timing.poll_seconds)), "MaxAttempts": 20}
    )
    return f"{detail} Failed deliveries go under {pipeline.error_prefix}."


# --- 3. IAM role for Firehose -------------------------------------------------------------------


TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "firehose.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def log_group_name(pipeline: Pipeline) -> str:
    return pipeline.log_group or f"/aws/kinesisfirehose/{pipeline.firehose_name}"


def role_policy(pipeline: Pipeline) -> dict:
    """Least privilege: read this stream, write this bucket, log to this log group (spec §3.5)."""
    arn = parse_arn(pipeline.stream_arn)
    partition, region, account = arn["partition"], arn["region"], arn["account"]
    bucket_arn = f"arn:{partition}:s3:::{pipeline.bucket_name}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadTheKinesisStream",
                "Effect": "Allow",
                "Action": [
                    "kinesis:DescribeStream",
                    "kinesis:GetShardIterator",
                    "kinesis:GetRecords",
                    "kinesis:ListShards",
                ],
                "Resource": pipeline.stream_arn,
            },
            {
                "Sid": "BackUpFailedDeliveries",
                "Effect": "Allow",
                "Action": [
                    "s3:AbortMultipartUpload",
                    "s3:GetBucketLocation",
                    "s3:GetObject",
                    "s3:ListBucket",
                    "s3:ListBucketMultipartUploads",
                    "s3:PutObject",
                ],
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
            },
            {
                "Sid": "LogDeliveryErrors",
                "Effect": "Allow",
                "Action": ["logs:PutLogEvents"],
                "Resource": [
                    f"arn:{partition}:logs:{region}:{account}:log-group:{log_group_name(pipeline)}:log-stream:*"
                ],
            },
        ],
    }


def get_role(aws: Aws, name: str) -> dict | None:
    try:
        return aws.client("iam").get_role(RoleName=name)["Role"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return None
        raise


def ensure_role(pipeline: Pipeline, aws: Aws, timing: Timing = DEFAULT_TIMING) -> str:
    if not pipeline.stream_arn:
        raise AwsError("config", "The Kinesis data stream's ARN is not known yet; run the stream step first.")
    iam = aws.client("iam")
    name = pipeline.role_name
    role = get_role(aws, name)
    if role is None:
        role = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
            Description=f"Shoal: Firehose reads {pipeline.stream_name} and delivers to pool {pipeline.pool}",
            Tags=_tag_list(pipeline),
        )["Role"]
        _save(pipeline, role_created=True)
        detail = f"Created {name}."
    elif not pipeline.role_created:
        tags = role.get("Tags")
        if tags is None:
            tags = iam.list_role_tags(RoleName=name).get("Tags", [])
        if not _tagged(tags, pipeline):
            raise AwsError(
                "conflict",
                f"An IAM role named {name} already exists and was not created for this pipeline. "
                "Start again with another role name.",
            )
        _save(pipeline, role_created=True)
        detail = f"Found {name}, created by an earlier attempt."
    else:
        detail = f"Found {name}."
    # Always (re)written, so that the policy names the current stream and bucket.
    iam.put_role_policy(
        RoleName=name, PolicyName=FIREHOSE_POLICY_NAME, PolicyDocument=json.dumps(role_policy(pipeline))
    )
    iam.get_waiter("role_exists").wait(RoleName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 20})
    _save(pipeline, role_arn=role["Arn"])
    return f"{detail} Inline policy {FIREHOSE_POLICY_NAME}: read the stream, write the bucket, log."


# --- 4. Firehose stream -------------------------------------------------------------------------


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
        "Tags": _tag_list(pipeline),
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
        _save(pipeline, log_group=name, log_group_created=True)
    except ClientError as exc:
        if error_code(exc) != "ResourceAlreadyExistsException":
            raise
        if not pipeline.log_group:
            _save(pipeline, log_group=name)
    try:
        logs.create_log_stream(logGroupName=name, logStreamName=LOG_STREAM_NAME)
    except ClientError as exc:
        if error_code(exc) != "ResourceAlreadyExistsException":
            raise


def _create_firehose(pipeline: Pipeline, aws: Aws, timing: Timing) -> None:
    """CreateDeliveryStream, retried while a new IAM role is not usable yet (spec §3.7)."""
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
    description = describe_firehose(aws, name)
    ours = pipeline.firehose_created
    if description is not None and not ours:
        tags = aws.client("firehose").list_tags_for_delivery_stream(DeliveryStreamName=name).get("Tags", [])
        if not _tagged(tags, pipeline):
            raise AwsError(
                "conflict",
                f"A Firehose stream named {name} already exists and was not created for this pipeline. "
                "Start again with another Firehose stream name.",
            )
        _save(pipeline, firehose_created=True)
        ours = True
    if description is not None and description["DeliveryStreamStatus"] == "CREATING_FAILED":
        # A failed creation never recovers: delete it and create it again (spec §3.6).
        aws.client("firehose").delete_delivery_stream(DeliveryStreamName=name, AllowForceDelete=True)
        _wait(
            f"the failed Firehose stream {name} to be deleted",
            lambda: describe_firehose(aws, name) is None,
            timeout=timing.firehose_delete_wait_seconds,
            interval=timing.firehose_poll_seconds,
            timing=timing,
        )
        description = None
    if description is None:
        _create_firehose(pipeline, aws, timing)
        _save(pipeline, firehose_created=True)
        detail = f"Created {name}: {pipeline.stream_name} → {pipeline.endpoint_url}."
    else:
        source = _source_arn(description)
        if source != pipeline.stream_arn:
            raise AwsError(
                "conflict",
                f"The Firehose stream {name} reads {source or 'another source'}, not "
                f"{pipeline.stream_arn}. Start again with another Firehose stream name.",
            )
        drift = _drift(pipeline, description)
        if drift or push_endpoint:
            if description["DeliveryStreamStatus"] == "ACTIVE":
                update_firehose_endpoint(pipeline, aws, description)
                detail = f"Updated {name} ({'; '.join(drift) or 'endpoint URL and access key sent again'})."
            else:
                detail = f"Found {name}; it will be checked again once ACTIVE."
        else:
            detail = f"Found {name}, configured as asked."

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

    _wait(
        f"the Firehose stream {name} to be ACTIVE",
        active,
        timeout=timing.firehose_wait_seconds,
        interval=timing.firehose_poll_seconds,
        timing=timing,
    )
    _save(pipeline, firehose_arn=state["d"]["DeliveryStreamARN"])
    return f"{detail} ACTIVE."


# --- 5. The table's Kinesis streaming destination -----------------------------------------------


def find_destination(aws: Aws, pipeline: Pipeline) -> dict | None:
    found = aws.client("dynamodb").describe_kinesis_streaming_destination(TableName=pipeline.table_name)
    for dest in found.get("KinesisDataStreamDestinations", []):
        if dest.get("StreamArn") == pipeline.stream_arn:
            return dest
    return None


def ensure_destination(pipeline: Pipeline, aws: Aws, timing: Timing = DEFAULT_TIMING) -> str:
    """Last, once Firehose is ACTIVE: Firehose reads Kinesis from LATEST, so a change streamed
    before it would never reach the pool (spec §3.6)."""
    if not pipeline.stream_arn:
        raise AwsError("config", "The Kinesis data stream's ARN is not known yet; run the stream step first.")
    if pipeline.firehose_name and not pipeline.firehose_arn:
        raise AwsError("config", "The Firehose stream is not ACTIVE yet; run the Firehose step first.")
    ddb = aws.client("dynamodb")
    try:
        current = find_destination(aws, pipeline)
    except ClientError as exc:
        if emulator_lacks(aws, exc):
            if not pipeline.destination_emulated:
                _save(pipeline, destination_emulated=True, destination_enabled_at=timezone.now())
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
        _save(pipeline, destination_created=True, destination_enabled_at=timezone.now())
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

    _wait(
        "the table's Kinesis streaming destination to be ACTIVE",
        active,
        timeout=timing.destination_wait_seconds,
        interval=timing.poll_seconds,
        timing=timing,
    )
    return f"{detail} ACTIVE."


# --- Teardown (spec §3.8): only what Shoal created ----------------------------------------------


def remove_firehose(pipeline: Pipeline, aws: Aws, timing: Timing = DEFAULT_TIMING) -> str:
    if not pipeline.firehose_created:
        raise StepSkipped("Shoal did not create a Firehose stream.")
    firehose = aws.client("firehose")
    name = pipeline.firehose_name
    description = describe_firehose(aws, name)
    if description is not None:
        if description["DeliveryStreamStatus"] == "CREATING":
            _wait(
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
        _wait(
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
    _wait(
        "the table's Kinesis streaming destination to be DISABLED",
        lambda: (find_destination(aws, pipeline) or {}).get("DestinationStatus", "DISABLED") == "DISABLED",
        timeout=timing.destination_wait_seconds,
        interval=timing.poll_seconds,
        timing=timing,
    )
    return f"Stopped streaming {pipeline.table_name} to {pipeline.stream_name}."


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


def remove_role(pipeline: Pipeline, aws: Aws, timing: Timing = DEFAULT_TIMING) -> str:
    if not pipeline.role_created:
        raise StepSkipped("Shoal did not create an IAM role.")
    iam = aws.client("iam")
    name = pipeline.role_name
    try:
        # Every policy must go first, or DeleteRole answers DeleteConflict.
        for policy in iam.list_role_policies(RoleName=name).get("PolicyNames", []):
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        for attached in iam.list_attached_role_policies(RoleName=name).get("AttachedPolicies", []):
            iam.detach_role_policy(RoleName=name, PolicyArn=attached["PolicyArn"])
        iam.delete_role(RoleName=name)
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return f"{name} was already gone."
        raise
    return f"Deleted {name} and its inline policy."


def remove_bucket(pipeline: Pipeline, aws: Aws, timing: Timing = DEFAULT_TIMING) -> str:
    if not pipeline.bucket_created:
        raise StepSkipped(f"{pipeline.bucket_name} is your bucket; it is left in place.")
    if pipeline.keep_bucket:
        raise StepSkipped(f"{pipeline.bucket_name} is kept, as asked, with its objects.")
    s3 = aws.client("s3")
    name = pipeline.bucket_name
    removed = 0
    try:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
            keys = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            for start in range(0, len(keys), 1000):
                s3.delete_objects(Bucket=name, Delete={"Objects": keys[start : start + 1000], "Quiet": True})
            removed += len(keys)
        s3.delete_bucket(Bucket=name)
    except ClientError as exc:
        if error_code(exc) in ("NoSuchBucket", "404"):
            return f"{name} was already gone."
        raise
    return f"Deleted {name} and its {removed} objects."


PROVISION = {
    "stream": ensure_stream,
    "bucket": ensure_bucket,
    "role": ensure_role,
    "firehose": ensure_firehose,
    "destination": ensure_destination,
}
TEARDOWN = {
    "firehose": remove_firehose,
    "destination": remove_destination,
    "stream": remove_stream,
    "role": remove_role,
    "bucket": remove_bucket,
}
FUNCTIONS = {PipelineStep.Phase.PROVISION: PROVISION, PipelineStep.Phase.TEARDOWN: TEARDOWN}
