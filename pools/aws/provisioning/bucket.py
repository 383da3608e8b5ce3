"""Step "bucket": the S3 bucket Firehose writes the batches it could not deliver to."""

from __future__ import annotations

from botocore.exceptions import ClientError

from pools.aws import errors
from pools.aws.clients import Aws
from pools.aws.errors import AwsError, error_code
from pools.aws.models import Pipeline
from pools.aws.provisioning.base import DEFAULT_TIMING, StepSkipped, Timing, is_tagged, save_fields, tag_list


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
    """The LocationConstraint rule: none in us-east-1, the region everywhere else."""
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
        save_fields(pipeline, bucket_created=True)
        detail = f"Created {name} in {aws.region}."
    elif pipeline.bucket_new and not pipeline.bucket_created:
        if not is_tagged(_bucket_tags(aws, name), pipeline):
            raise AwsError(
                "conflict",
                f"An S3 bucket named {name} already exists and was not created for this pipeline. "
                "Start again and choose it as an existing bucket, or pick another name.",
            )
        save_fields(pipeline, bucket_created=True)
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
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list(pipeline)})
    s3.get_waiter("bucket_exists").wait(
        Bucket=name, WaiterConfig={"Delay": max(1, int(timing.poll_seconds)), "MaxAttempts": 20}
    )
    return f"{detail} Failed deliveries go under {pipeline.error_prefix}."


def describe(pipeline: Pipeline, aws: Aws) -> dict | None:
    """The bucket's name and tags, or None when it does not exist."""
    if not _bucket_exists(aws, pipeline.bucket_name):
        return None
    return {"Name": pipeline.bucket_name, "TagSet": _bucket_tags(aws, pipeline.bucket_name)}


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
