"""DynamoDB's export to S3 as AWS documents it (format DYNAMODB_JSON), read and written.

    <prefix>/AWSDynamoDB/<ExportId>/manifest-summary.json   (+ .checksum)
    <prefix>/AWSDynamoDB/<ExportId>/manifest-files.json     (+ .checksum; one JSON object a line:
                                                             itemCount, md5Checksum, etag, dataFileS3Key)
    <prefix>/AWSDynamoDB/<ExportId>/_started                (empty)
    <prefix>/AWSDynamoDB/<ExportId>/data/<name>.json.gz     (gzip; one {"Item": {…}} a line; at
                                                             least one file a partition, empty
                                                             ones for empty partitions)

`md5Checksum` is the data file's MD5, base64-encoded (as S3's Content-MD5); a manifest's
`.checksum` holds its MD5 in hex. The writer is what the tests, the benchmark and the sandbox use
to build exports in moto's S3, whose own export does not follow this layout.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from pools.aws.snapshot_pages import item_to_change_record

FORMAT = "DYNAMODB_JSON"


class ExportError(Exception):
    """The export's files are not what its manifests say (the message says which and how)."""


@dataclass(frozen=True)
class DataFile:
    key: str
    item_count: int
    md5: str  # base64


@dataclass(frozen=True)
class Summary:
    export_arn: str
    export_time: datetime
    bucket: str
    prefix: str
    manifest_files_key: str
    item_count: int
    output_format: str


def export_id(export_arn: str) -> str:
    return export_arn.rsplit("/", 1)[-1]


def folder(prefix: str, export_arn: str) -> str:
    return "/".join(p for p in (prefix.strip("/"), "AWSDynamoDB", export_id(export_arn)) if p)


def object_key(prefix: str, key: str) -> str:
    """A manifest's key as an S3 key: AWS writes them with the prefix; a key without it is
    taken as relative to the prefix."""
    prefix = prefix.strip("/")
    return key if not prefix or key.startswith(prefix + "/") else f"{prefix}/{key}"


def md5_base64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


# --- reading -------------------------------------------------------------------------------------


def check_manifest(name: str, body: bytes, checksum: bytes | None) -> None:
    if checksum is not None and checksum.strip().decode(errors="replace").lower() != md5_hex(body):
        raise ExportError(f"{name} does not match its .checksum: the export's files were changed or cut")


def read_summary(body: bytes) -> Summary:
    doc = json.loads(body)
    if doc.get("outputFormat", FORMAT) != FORMAT:
        raise ExportError(f"the export is in {doc.get('outputFormat')}; Shoal reads {FORMAT} exports")
    return Summary(
        export_arn=doc["exportArn"],
        export_time=parse_time(doc["exportTime"]),
        bucket=doc.get("s3Bucket", ""),
        prefix=doc.get("s3Prefix") or "",
        manifest_files_key=doc["manifestFilesS3Key"],
        item_count=int(doc.get("itemCount") or 0),
        output_format=doc.get("outputFormat", FORMAT),
    )


def read_manifest_files(body: bytes) -> list[DataFile]:
    files = []
    for line in body.splitlines():
        if line.strip():
            doc = json.loads(line)
            files.append(DataFile(doc["dataFileS3Key"], int(doc["itemCount"]), doc["md5Checksum"]))
    return files


def change_records(
    data: bytes, data_file: DataFile, *, key_names: list[str], table: str, region: str, export_ms: int
) -> list[bytes]:
    """A data file's items as INSERT change records versioned at the export's time, after its MD5
    and item count were checked against the manifest."""
    if md5_base64(data) != data_file.md5:
        raise ExportError(f"{data_file.key}: its MD5 is not the manifest's md5Checksum")
    lines = gzip.decompress(data).splitlines() if data else []
    out = [
        item_to_change_record(json.loads(line)["Item"], key_names, table, region, created=export_ms)
        for line in lines
        if line.strip()
    ]
    if len(out) != data_file.item_count:
        raise ExportError(f"{data_file.key} holds {len(out)} items; its manifest says {data_file.item_count}")
    return out


# --- writing (tests, benchmark, sandbox) -----------------------------------------------------------


def data_file(items: Iterable[dict]) -> bytes:
    """One gzip data file; an empty partition's file is empty."""
    lines = [json.dumps({"Item": item}, separators=(",", ":")).encode() for item in items]
    if not lines:
        return b""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as out:
        out.write(b"\n".join(lines) + b"\n")
    return buffer.getvalue()


def write_export(
    s3,
    *,
    bucket: str,
    prefix: str,
    export_arn: str,
    table_arn: str,
    export_time: datetime,
    partitions: Iterable[list[dict]],
) -> str:
    """Write an export of `partitions` (one data file each) into `bucket`; returns the folder."""
    base = folder(prefix, export_arn)
    s3.put_object(Bucket=bucket, Key=f"{base}/_started", Body=b"")
    lines, total = [], 0
    for index, items in enumerate(partitions):
        body = data_file(items)
        key = f"{base}/data/{index:05d}-{hashlib.sha1(body).hexdigest()[:12]}.json.gz"
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        lines.append(
            json.dumps(
                {
                    "itemCount": len(items),
                    "md5Checksum": md5_base64(body),
                    "etag": md5_hex(body),
                    "dataFileS3Key": key,
                }
            )
        )
        total += len(items)
    _put_manifest(s3, bucket, f"{base}/manifest-files", ("\n".join(lines) + "\n").encode())
    stamp = export_time.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    summary = {
        "version": "2020-06-30",
        "exportArn": export_arn,
        "startTime": stamp,
        "endTime": stamp,
        "tableArn": table_arn,
        "exportTime": stamp,
        "s3Bucket": bucket,
        "s3Prefix": prefix or None,
        "s3SseAlgorithm": "AES256",
        "manifestFilesS3Key": f"{base}/manifest-files.json",
        "billedSizeBytes": 0,
        "itemCount": total,
        "outputFormat": FORMAT,
    }
    _put_manifest(s3, bucket, f"{base}/manifest-summary", json.dumps(summary).encode())
    return base


def _put_manifest(s3, bucket: str, stem: str, body: bytes) -> None:
    s3.put_object(Bucket=bucket, Key=f"{stem}.json", Body=body)
    s3.put_object(Bucket=bucket, Key=f"{stem}.checksum", Body=md5_hex(body).encode())


def chunks(records: list[bytes], max_bytes: int) -> Iterator[list[bytes]]:
    """Records in deliveries of about max_bytes each."""
    chunk: list[bytes] = []
    size = 0
    for record in records:
        if chunk and size + len(record) > max_bytes:
            yield chunk
            chunk, size = [], 0
        chunk.append(record)
        size += len(record)
    if chunk:
        yield chunk
