"""The shapes on the wire, built in one place: a Firehose HTTP endpoint request body, a DynamoDB
change record as Kinesis Data Streams for DynamoDB writes it, and a DynamoDB item's size.

Everything that makes these shapes uses this module: the Firehose sender (pools/firehose_client.py),
the sample records (pools/samples.py), the initial snapshot and the replay of failed deliveries
(pools/aws/), the sandbox relay, the replay of quarantined records, the tests and the benchmarks.
Standard library only, so that the sender and the benchmarks run without Django.

A change record, as Shoal receives it base64-encoded in each `data` of a Firehose body:

    {"awsRegion": "us-east-1", "eventID": "…", "eventName": "INSERT" | "MODIFY" | "REMOVE",
     "userIdentity": null | {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
     "recordFormat": "application/json", "tableName": "orders",
     "dynamodb": {"ApproximateCreationDateTime": 1719347890793, "Keys": {…},
                  "NewImage": {…}, "OldImage": {…}, "SizeBytes": 252,
                  "ApproximateCreationDateTimePrecision": "MILLISECOND"},
     "eventSource": "aws:dynamodb"}

Images and keys are in DynamoDB JSON ({"S": "…"}, {"N": "…"}, {"M": {…}}, …); binary values (B, BS)
travel as base64 text.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Iterable
from datetime import datetime

EVENT_NAMES = ("INSERT", "MODIFY", "REMOVE")


# --- The Firehose request body ------------------------------------------------------------------


def firehose_body(
    request_id: str,
    records: Iterable[bytes | str],
    *,
    timestamp_ms: int | None = None,
    encoded: bool = False,
) -> bytes:
    """A Firehose HTTP endpoint request body carrying `records`, compact JSON:

        {"requestId":"…","timestamp":1719347891599,"records":[{"data":"<base64>"},…]}

    Each record is base64-encoded into its `data`; with `encoded`, the records are already the
    `data` values as they travel (base64 text, as Firehose's error records in S3 and the quarantine
    keep them) and are written as they are. `timestamp_ms` defaults to now.
    """
    records = list(records)
    if not records:
        records_json = b"[]"
    elif encoded:
        entries = b",".join(b'{"data":' + json.dumps(r).encode() + b"}" for r in records)
        records_json = b"[" + entries + b"]"
    else:
        # base64 is plain ASCII, so the array is assembled directly: a 1 MiB batch is thousands
        # of records, and json.dumps of as many dicts would cost more than the encoding.
        data = b'"},{"data":"'.join(map(base64.b64encode, records))  # type: ignore[arg-type]
        records_json = b'[{"data":"' + data + b'"}]'
    stamp = int(time.time() * 1000) if timestamp_ms is None else int(timestamp_ms)
    return b"".join(
        (
            b'{"requestId":',
            json.dumps(request_id).encode(),
            b',"timestamp":',
            str(stamp).encode(),
            b',"records":',
            records_json,
            b"}",
        )
    )


# --- The change record --------------------------------------------------------------------------


def change_record(
    event_name: str,
    *,
    keys: dict,
    new_image: dict | None = None,
    old_image: dict | None = None,
    event_id: str,
    created: int | None,
    table_name: str,
    region: str,
    precision: str = "MILLISECOND",
    user_identity: dict | None = None,
    size_bytes: int | None = None,
) -> dict:
    """A DynamoDB change record in the shape Kinesis Data Streams for DynamoDB writes (see above).

    `created` is ApproximateCreationDateTime in `precision` (epoch milliseconds or microseconds).
    `size_bytes` defaults to the size of the keys and images (item_size).
    """
    dynamodb: dict = {"ApproximateCreationDateTime": created, "Keys": keys}
    if new_image is not None:
        dynamodb["NewImage"] = new_image
    if old_image is not None:
        dynamodb["OldImage"] = old_image
    if size_bytes is None:
        size_bytes = item_size(keys) + item_size(new_image or {}) + item_size(old_image or {})
    dynamodb["SizeBytes"] = size_bytes
    dynamodb["ApproximateCreationDateTimePrecision"] = precision
    return {
        "awsRegion": region,
        "eventID": event_id,
        "eventName": event_name,
        "userIdentity": user_identity,
        "recordFormat": "application/json",
        "tableName": table_name,
        "dynamodb": dynamodb,
        "eventSource": "aws:dynamodb",
    }


# --- A DynamoDB Streams record in the same shape --------------------------------------------------


def epoch(value, precision: str = "MILLISECOND") -> int | None:
    """Epoch milliseconds, or microseconds for MICROSECOND (as KDS for DynamoDB sends them)."""
    scale = 1_000_000 if precision == "MICROSECOND" else 1000
    if isinstance(value, datetime):
        return round(value.timestamp() * scale)
    if isinstance(value, int | float):
        return round(value * scale)  # Streams sends epoch seconds (moto: a float)
    return None


def _identity(value: dict | None) -> dict | None:
    # Streams writes {"Type", "PrincipalId"}, KDS {"type", "principalId"}.
    if not value:
        return None
    return {key[:1].lower() + key[1:]: v for key, v in value.items()}


def to_kds_record(record: dict, *, table_name: str, region: str, precision: str = "MILLISECOND") -> dict:
    """A DynamoDB Streams record (as boto3 returns it) in the KDS shape, so a record read from the
    table's DynamoDB stream lands exactly as one from Kinesis does: no eventVersion,
    SequenceNumber or StreamViewType; recordFormat, tableName, userIdentity added; the creation
    time as an integer in the precision the streaming destination was enabled with."""
    source = record["dynamodb"]
    return change_record(
        record["eventName"],
        keys=source["Keys"],
        new_image=source.get("NewImage"),
        old_image=source.get("OldImage"),
        event_id=record["eventID"],
        created=epoch(source.get("ApproximateCreationDateTime"), precision),
        precision=precision,
        table_name=table_name,
        region=region,
        user_identity=_identity(record.get("userIdentity")),
        size_bytes=source.get("SizeBytes"),
    )


def json_default(value):
    """JSON for what boto3's low-level client returns besides JSON types: bytes (B, BS) as base64,
    as Kinesis writes them, and sets as sorted lists."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


_COMPACT = json.JSONEncoder(separators=(",", ":"), default=json_default)
_COMPACT_UTF8 = json.JSONEncoder(separators=(",", ":"), default=json_default, ensure_ascii=False)


def encode_record(record: dict, *, ascii_only: bool = True) -> bytes:
    """A change record as compact JSON bytes (what goes into a body's `data`). `ascii_only=False`
    writes non-ASCII text as UTF-8 rather than as \\u escapes (shorter; the same JSON)."""
    return (_COMPACT if ascii_only else _COMPACT_UTF8).encode(record).encode()


# --- An item's size -----------------------------------------------------------------------------


def item_size(item: dict) -> int:
    """A DynamoDB item's size by DynamoDB's rules (what SizeBytes and the 400 KB limit count):
    each attribute's name in UTF-8 bytes plus its value's size (attribute_size)."""
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def attribute_size(value: dict) -> int:
    """The size of one AttributeValue ({"S": …}, {"N": …}, {"M": {…}}, …), as DynamoDB counts it:
    strings and binaries by their bytes, numbers by about one byte per two significant digits plus
    one, 1 for BOOL and NULL, 3 plus one per element for L and M."""
    ((tag, v),) = value.items()
    if tag == "S":
        return len(v.encode())
    if tag == "N":
        return _number_size(v)
    if tag == "B":
        return _binary_size(v)
    if tag in {"BOOL", "NULL"}:
        return 1
    if tag == "SS":
        return sum(len(s.encode()) for s in v)
    if tag == "NS":
        return sum(_number_size(n) for n in v)
    if tag == "BS":
        return sum(_binary_size(b) for b in v)
    if tag == "L":
        return 3 + sum(1 + attribute_size(e) for e in v)
    if tag == "M":
        return 3 + item_size(v) + len(v)
    raise ValueError(f"unexpected DynamoDB type {tag}")


def _number_size(text: str) -> int:
    return (len(text.replace(".", "").lstrip("-0")) + 1) // 2 + 1


def _binary_size(value: bytes | bytearray | str) -> int:
    if isinstance(value, str):  # base64 text, as in a record
        try:
            return len(base64.b64decode(value))
        except (binascii.Error, ValueError):
            return len(value)
    return len(value)
