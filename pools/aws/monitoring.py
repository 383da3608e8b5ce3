"""A pipeline's live status, failed deliveries in its backup bucket, and their replay.

When Firehose runs out of retries (7200 s), it writes the batch to the bucket under the error prefix
as JSON error records, one per original record, each with the record in `rawData` (base64). Replay
lands those records into the pool through the normal idempotent path, one delivery per S3 object
with a request id derived from the object's bucket, key and ETag, so a replay that is repeated (or
interrupted and run again) stores each object once; then the object moves to `archived/`.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

from botocore.exceptions import BotoCoreError, ClientError
from django.utils import timezone

from pools.aws import errors
from pools.aws.clients import Aws
from pools.aws.models import Pipeline
from pools.aws.provisioning import registry
from pools.aws.provisioning.destination import emulator_lacks
from pools.reading import Batch, into_pool, land_batches

log = logging.getLogger(__name__)

ARCHIVE_PREFIX = "archived/"
MAX_RECORDS_PER_DELIVERY = 10_000  # as in a Firehose request
MAX_BYTES_PER_DELIVERY = 4 << 20
SHOWN_OBJECTS = 10


def _look(fn) -> str:
    try:
        return fn()
    except (BotoCoreError, ClientError) as exc:
        error = errors.describe(exc)
        return "not found" if error.kind == "not_found" else f"error: {error}"


# What the pipeline page shows of a step's resource: its state read from what the step's `describe`
# found, and the word for nothing found.
SHOWN_STATES: dict[str, tuple[Callable[[dict], str], str]] = {
    "stream": (lambda found: found["StreamStatus"], "not found"),
    "firehose": (lambda found: found["DeliveryStreamStatus"], "not found"),
    "role": (lambda found: "exists", "not found"),
    "destination": (lambda found: found["DestinationStatus"], "not enabled"),
    "table_stream": (lambda found: f"on ({found['StreamViewType']})", "off"),
}


def check(pipeline: Pipeline, aws: Aws) -> dict:
    """The live status of each resource and the failed deliveries waiting in the bucket."""
    status: dict = {"checked_at": timezone.now().isoformat()}

    def table() -> str:
        return aws.client("dynamodb").describe_table(TableName=pipeline.table_name)["Table"]["TableStatus"]

    status["table"] = _look(table)
    steps = registry.pipeline_keys(pipeline, registry.Phase.PROVISION)
    for key in SHOWN_STATES:
        if key in steps:  # a pull has no Firehose, role or bucket to look at
            status[key] = _look(functools.partial(_state, key, pipeline, aws))
    if pipeline.pulls:  # no Firehose: no failed deliveries in a bucket
        return status
    try:
        status["failed"] = asdict(failed_deliveries(pipeline, aws))
        status["bucket"] = "exists"
    except (BotoCoreError, ClientError) as exc:
        error = errors.describe(exc)
        status["bucket"] = "not found" if error.kind == "not_found" else f"error: {error}"
        status["failed"] = None
    return status


def _state(key: str, pipeline: Pipeline, aws: Aws) -> str:
    shown, missing = SHOWN_STATES[key]
    if key == "destination" and aws.connection.is_emulator and pipeline.destination_emulated:
        # Known already: the emulator lacks the call, and asking again printed the emulator's
        # traceback into the demo's log on every monitor run.
        return "emulated by the sandbox relay"
    try:
        found = registry.STEPS[key].describe(pipeline, aws)
    except ClientError as exc:
        if key == "destination" and emulator_lacks(aws, exc):
            return "emulated by the sandbox relay"
        raise
    return shown(found) if found else missing


@dataclass
class FailedObjects:
    count: int = 0
    bytes: int = 0
    newest: str = ""
    objects: list[dict] = field(default_factory=list)


def _error_objects(pipeline: Pipeline, aws: Aws):
    paginator = aws.client("s3").get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=pipeline.bucket_name, Prefix=pipeline.error_prefix):
        yield from page.get("Contents", [])


def failed_deliveries(pipeline: Pipeline, aws: Aws) -> FailedObjects:
    """Objects Firehose wrote under the error prefix (not yet replayed), the newest with the
    reasons Firehose gave (each error record's errorCode and errorMessage)."""
    found = FailedObjects()
    objects = sorted(_error_objects(pipeline, aws), key=lambda o: o["LastModified"], reverse=True)
    for obj in objects:
        found.count += 1
        found.bytes += obj.get("Size", 0)
    found.objects = [
        {
            "key": o["Key"],
            "size": o.get("Size", 0),
            "last_modified": o["LastModified"].isoformat(),
            "reasons": _object_reasons(pipeline, aws, o["Key"]),
        }
        for o in objects[:SHOWN_OBJECTS]
    ]
    found.newest = found.objects[0]["last_modified"] if found.objects else ""
    return found


def error_documents(body: bytes):
    """The JSON objects of a Firehose error object: one per line, or concatenated without
    newlines, gzip inflated first."""
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    text = body.decode("utf-8")
    decoder = json.JSONDecoder()
    pos = 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos >= len(text):
            break
        doc, pos = decoder.raw_decode(text, pos)
        if isinstance(doc, dict):
            yield doc


def parse_error_records(body: bytes) -> list[str]:
    """The `rawData` (base64) of each Firehose error record in an S3 object (others skipped)."""
    return [doc["rawData"] for doc in error_documents(body) if isinstance(doc.get("rawData"), str)]


def error_reasons(body: bytes) -> list[dict]:
    """Why Firehose gave up: each distinct (errorCode, errorMessage) with its number of records."""
    counts: dict[tuple[str, str], int] = {}
    for doc in error_documents(body):
        reason = (str(doc.get("errorCode") or "unknown"), str(doc.get("errorMessage") or ""))
        counts[reason] = counts.get(reason, 0) + 1
    return [{"code": code, "message": message, "records": n} for (code, message), n in counts.items()]


def _object_reasons(pipeline: Pipeline, aws: Aws, key: str) -> list[dict]:
    try:
        body = aws.client("s3").get_object(Bucket=pipeline.bucket_name, Key=key)["Body"].read()
        return error_reasons(body)
    except (BotoCoreError, ClientError, ValueError) as exc:
        return [{"code": "unreadable", "message": str(exc), "records": 0}]


def replay_request_id(bucket: str, key: str, etag: str, part: int = 0) -> str:
    digest = hashlib.sha256(f"{bucket}/{key}/{etag}".encode()).hexdigest()
    return f"s3-replay-{digest}" + (f"-{part}" if part else "")


def _chunks(raws: list[str]):
    chunk: list[str] = []
    size = 0
    for raw in raws:
        if chunk and (len(chunk) >= MAX_RECORDS_PER_DELIVERY or size + len(raw) > MAX_BYTES_PER_DELIVERY):
            yield chunk
            chunk, size = [], 0
        chunk.append(raw)
        size += len(raw)
    if chunk:
        yield chunk


@dataclass
class ReplayResult:
    objects: int = 0
    records: int = 0
    deliveries_stored: int = 0
    deliveries_already_stored: int = 0
    archived: int = 0
    errors: list[str] = field(default_factory=list)


def replay_failed(pipeline: Pipeline, aws: Aws) -> ReplayResult:
    """Land every failed-delivery object into the pool, then archive it.

    The one reading loop (pools/reading.py): each object's records land in deliveries whose request
    ids come from the object's bucket, key and ETag (a replay run twice stores them once); the
    position is the object, archived only once its last delivery is durable.
    """
    result = ReplayResult()
    source = pipeline.firehose_arn or "shoal:s3-replay"

    def save(batch: Batch, stored: bool) -> None:
        result.deliveries_stored += int(stored)
        result.deliveries_already_stored += int(not stored and bool(batch.records))
        if batch.position is not None:
            _archive(pipeline, aws, batch.position, result)

    tally = land_batches(
        _failed_batches(pipeline, aws, result),
        land=into_pool(pipeline.pool, source_arn=source),
        save=save,
        together=False,  # archiving is an S3 call: after the landing, never inside its transaction
    )
    result.records = tally.records
    log.info("pipeline %s: replayed %s", pipeline.pk, result)
    return result


def _failed_batches(pipeline: Pipeline, aws: Aws, result: ReplayResult) -> Iterator[Batch]:
    """The records of each failed-delivery object, in deliveries; the last one's position is the
    object's key. An object that cannot be read is counted in `result.errors` and left where it is."""
    s3, bucket = aws.client("s3"), pipeline.bucket_name
    for obj in list(_error_objects(pipeline, aws)):
        key = obj["Key"]
        try:
            got = s3.get_object(Bucket=bucket, Key=key)
            etag = got.get("ETag", obj.get("ETag", "")).strip('"')
            raws = parse_error_records(got["Body"].read())
        except (BotoCoreError, ClientError, ValueError) as exc:
            result.errors.append(f"{key}: {errors.describe(exc) if not isinstance(exc, ValueError) else exc}")
            continue
        result.objects += 1
        parts = list(_chunks(raws)) or [[]]
        for part, raws_part in enumerate(parts):
            last = part == len(parts) - 1
            request_id = replay_request_id(bucket, key, etag, part)
            yield Batch(request_id, raws_part, position=key if last else None, encoded=True)


def _archive(pipeline: Pipeline, aws: Aws, key: str, result: ReplayResult) -> None:
    """Only once every part is landed (durably), the object leaves the error prefix."""
    s3, bucket = aws.client("s3"), pipeline.bucket_name
    try:
        s3.copy_object(Bucket=bucket, Key=ARCHIVE_PREFIX + key, CopySource={"Bucket": bucket, "Key": key})
        s3.delete_object(Bucket=bucket, Key=key)
        result.archived += 1
    except (BotoCoreError, ClientError) as exc:
        result.errors.append(f"{key}: landed but not archived: {errors.describe(exc)}")
