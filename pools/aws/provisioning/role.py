"""Step "role": the IAM role Firehose assumes, with a least-privilege inline policy."""

from __future__ import annotations

import json

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
)
from pools.aws.provisioning.firehose import log_group_name

FIREHOSE_POLICY_NAME = "shoal-firehose-delivery"


TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "firehose.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def role_policy(pipeline: Pipeline) -> dict:
    """Least privilege: read this stream, write this bucket, log to this log group."""
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
            Tags=tag_list(pipeline),
        )["Role"]
        save_fields(pipeline, role_created=True)
        detail = f"Created {name}."
    elif not pipeline.role_created:
        tags = role.get("Tags")
        if tags is None:
            tags = iam.list_role_tags(RoleName=name).get("Tags", [])
        if not is_tagged(tags, pipeline):
            raise AwsError(
                "conflict",
                f"An IAM role named {name} already exists and was not created for this pipeline. "
                "Start again with another role name.",
            )
        save_fields(pipeline, role_created=True)
        detail = f"Found {name}, created by an earlier attempt."
    else:
        detail = f"Found {name}."
    # Always (re)written, so that the policy names the current stream and bucket.
    iam.put_role_policy(
        RoleName=name, PolicyName=FIREHOSE_POLICY_NAME, PolicyDocument=json.dumps(role_policy(pipeline))
    )
    iam.get_waiter("role_exists").wait(RoleName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 20})
    save_fields(pipeline, role_arn=role["Arn"])
    return f"{detail} Inline policy {FIREHOSE_POLICY_NAME}: read the stream, write the bucket, log."


def describe(pipeline: Pipeline, aws: Aws) -> dict | None:
    return get_role(aws, pipeline.role_name)


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
