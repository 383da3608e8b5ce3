"""The Firehose HTTP endpoint request: parsing and validation, free of Django and the database.

Only the envelope is checked here (requestId, records). Whether each record is a DynamoDB change
record is decided later, inside the warehouse, so that one bad record never fails a batch.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import zlib
from dataclasses import dataclass


class EnvelopeError(Exception):
    """The request cannot be accepted; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Envelope:
    request_id: str
    timestamp: int | None
    record_count: int


def decompress(body: bytes, encoding: str, *, max_bytes: int) -> bytes:
    """The body as JSON bytes; gzip (Firehose's only encoding) is inflated up to max_bytes."""
    encoding = encoding.strip().lower()
    if encoding in {"", "identity"}:
        return body
    if encoding != "gzip":
        raise EnvelopeError(400, f"unsupported Content-Encoding {encoding!r} (use gzip or none)")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise EnvelopeError(400, f"body is not valid gzip: {exc}") from None
    if len(data) > max_bytes or inflater.unconsumed_tail:
        raise EnvelopeError(400, f"decompressed body exceeds {max_bytes} bytes")
    if not inflater.eof:
        raise EnvelopeError(400, "gzip body is truncated")
    return data


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        seen: set[str] = set()
        duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"duplicate key {duplicate[:40]!r}")
    return doc


class _Kept:
    """A record's place in the envelope once it was checked: the endpoint counts records and
    the warehouse reads them from the stored bytes, so none is kept as Python objects (a 64 MiB
    body of `{}` records took 1.9 GiB as dicts; as this one shared object, 8 bytes each)."""


KEPT = _Kept()
_ENVELOPE_KEYS = frozenset({"requestId", "records", "timestamp"})


def _checked_object(pairs: list[tuple[str, object]]):
    """object_pairs_hook: every object is checked for duplicate keys; only the envelope's own
    object (the one with Firehose's keys) is kept, the records and what they hold are not."""
    if len(pairs) > 1:
        _unique_keys(pairs)
    for key, _ in pairs:
        if key in _ENVELOPE_KEYS:
            return dict(pairs)
    return KEPT


# An escaped UTF-16 surrogate; rare in a Firehose body, so the full check runs only when one occurs.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def strict_json(data: bytes, *, keep=_unique_keys):
    """The body as JSON, read exactly as the warehouse reads it, or ValueError. `keep` makes each
    object (strict_envelope keeps only the envelope's).

    ClickHouse loads the same bytes (pools/tables.py), and the two parsers must agree on how many
    records there are: where Python's json module is lenient (NaN and Infinity, numbers out of
    range, duplicate keys — Python keeps the last, ClickHouse the first —, lone surrogates,
    UTF-16 bodies) the warehouse would extract fewer or other records than were acknowledged, so
    such a body is refused here. Python's nesting limit (about 1000) is below ClickHouse's (1024).
    """
    try:
        text = data.decode("utf-8-sig")
        doc = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            object_pairs_hook=keep,
        )
        if _SURROGATE_ESCAPE.search(text):
            # A well-formed pair is one character; a lone surrogate cannot be encoded (checked on
            # the text, since the records are not kept as objects).
            _lone_surrogate_check(text)
    except UnicodeEncodeError:
        raise ValueError("a string holds a lone surrogate (invalid \\u escape)") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"body is not UTF-8: {exc}") from None
    except RecursionError:
        raise ValueError("body is nested too deep") from None
    return doc


def _lone_surrogate_check(text: str) -> None:
    """UnicodeEncodeError if a string of the JSON text holds an unpaired surrogate escape: a
    second reading that encodes every key and string and keeps no object."""
    _encodable(json.loads(text, object_pairs_hook=_encoded_object))


def _encoded_object(pairs: list[tuple[str, object]]) -> None:
    for key, value in pairs:
        key.encode("utf-8")
        _encodable(value)


def _encodable(value: object) -> None:
    if isinstance(value, str):
        value.encode("utf-8")
    elif isinstance(value, list):
        for item in value:
            _encodable(item)


def parse(data: bytes, *, header_request_id: str) -> Envelope:
    """Validate a Firehose request body (already decompressed)."""
    try:
        doc = strict_json(data, keep=_checked_object)
    except ValueError as exc:
        raise EnvelopeError(400, f"body is not valid JSON: {exc}") from None
    except RecursionError:  # e.g. 100,000 nested "[": Firehose's envelope is two levels deep
        raise EnvelopeError(400, "body is not a Firehose request: its JSON nests too deeply") from None
    if not isinstance(doc, dict):
        raise EnvelopeError(400, "body must be a JSON object with requestId and records")
    request_id = doc.get("requestId")
    if request_id is None:
        request_id = header_request_id
    if not isinstance(request_id, str) or not request_id:
        raise EnvelopeError(400, "requestId is missing")
    if header_request_id and request_id != header_request_id:
        raise EnvelopeError(400, "requestId in the body does not match X-Amz-Firehose-Request-Id")
    if len(request_id) > 255:
        raise EnvelopeError(400, "requestId is longer than 255 characters")
    records = doc.get("records")
    if not isinstance(records, list):
        raise EnvelopeError(400, "records must be an array")
    if not records:
        raise EnvelopeError(400, "records is empty")
    timestamp = doc.get("timestamp")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool):
        timestamp = None
    return Envelope(request_id=request_id, timestamp=timestamp, record_count=len(records))


def basic_credentials(value: str) -> tuple[str, str] | None:
    """(user, password) from an Authorization: Basic header, or None."""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    return decode_user_password(token.strip())


def decode_user_password(token: str) -> tuple[str, str] | None:
    """(user, password) from base64("user:password"), or None."""
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None
