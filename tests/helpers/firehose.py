"""Firehose as tests play it: DynamoDB change records (as Kinesis Data Streams for DynamoDB writes
them), request bodies and headers, the endpoint's reply, and a delivery through real HTTP."""

from __future__ import annotations

import itertools
import json
import uuid

from pools.ingest import records
from tests.helpers.servers import Reply, http
from tests.helpers.waiting import wait_for

# Each record a test makes is a millisecond later than the one before, as real changes are.
_change_clock = itertools.count(1719347890250)


def change_record(
    order_id: str,
    event: str = "INSERT",
    *,
    quantity: int = 2,
    ts_ms: int | None = None,
    taqueria: str = "La Paloma",
) -> dict:
    keys = {"order_id": {"S": order_id}, "timestamp": {"S": "2024-05-08T13:20:37Z"}}
    image = {
        **keys,
        "taqueria": {"S": taqueria},
        "quantity": {"N": str(quantity)},
        "total_price": {"S": "12.50"},
        "orderItems": {"L": [{"M": {"name": {"S": "al pastor"}, "qty": {"N": "2"}}}]},
    }
    old = {**image, "quantity": {"N": str(quantity - 1)}}
    return records.change_record(
        event,
        keys=keys,
        new_image=image if event in ("INSERT", "MODIFY") else None,
        old_image=old if event in ("MODIFY", "REMOVE") else None,
        event_id=str(uuid.uuid4()),
        created=ts_ms or next(_change_clock),
        table_name="orders",
        region="us-east-1",
        size_bytes=120,
    )


def colliding_record(order_id: str) -> dict:
    """A record the warehouse refuses: once dots are escaped, "a.b" and "a%2Eb" are one path."""
    record = change_record(order_id)
    record["dynamodb"]["NewImage"]["a.b"] = {"S": "dot"}
    record["dynamodb"]["NewImage"]["a%2Eb"] = {"S": "percent"}
    return record


def firehose_body(change_records: list, request_id: str | None = None) -> tuple[str, bytes]:
    """A Firehose request body; records may be dicts (encoded) or raw bytes."""
    request_id = request_id or str(uuid.uuid4())
    raws = [r if isinstance(r, bytes) else json.dumps(r).encode() for r in change_records]
    return request_id, records.firehose_body(request_id, raws)


def firehose_headers(request_id: str, access_key: str | None, **extra) -> dict:
    headers = {
        "Content-Type": "application/json",
        "X-Amz-Firehose-Protocol-Version": "1.0",
        "X-Amz-Firehose-Request-Id": request_id,
        "X-Amz-Firehose-Source-Arn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/orders",
    }
    if access_key is not None:
        headers["X-Amz-Firehose-Access-Key"] = access_key
    headers.update(extra)
    return headers


def endpoint(live_server, pool) -> str:
    return live_server.url + pool.endpoint_path()


class InProcess:
    """Django's test client where a test would otherwise serve real HTTP: the same request through
    the same middleware and view, answered in the test's own process (no thread, no socket), so
    that the endpoint's answers are in the fast subset. A few tests keep `live_server`, for what
    only a real server shows."""

    url = ""

    def __init__(self, client):
        self.client = client


def call(server, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """`method` `path` on `server` (an InProcess or a live server); a Reply either way."""
    if not isinstance(server, InProcess):
        return http(method, server.url + path, body, headers)
    headers = dict(headers or {})
    content_type = headers.pop("Content-Type", "application/octet-stream")
    response = server.client.generic(
        method, path, data=body or b"", content_type=content_type, headers=headers
    )
    return Reply(response.status_code, response, response.content)


def post(server, pool, body: bytes, headers: dict):
    """A Firehose request to the pool's endpoint on `server`."""
    return call(server, "POST", pool.endpoint_path(), body, headers)


def assert_firehose_reply(reply, request_id: str, status: int):
    assert reply.status == status, reply.body
    assert reply.headers["Content-Type"] == "application/json"
    assert "Content-Encoding" not in reply.headers
    assert int(reply.headers["Content-Length"]) == len(reply.body)
    doc = reply.json()
    assert doc["requestId"] == request_id
    assert isinstance(doc["timestamp"], int) and doc["timestamp"] > 1_700_000_000_000
    if status == 200:
        assert "errorMessage" not in doc
    else:
        assert doc["errorMessage"]
    return doc


def guide_changes() -> list[dict]:
    """Two orders, one modified and one removed: what the guide's Step 4 SQL is shown on."""
    return [
        change_record("o1", "INSERT", quantity=3),
        change_record("o1", "MODIFY", quantity=4),
        change_record("o2", "INSERT", quantity=1),
        change_record("o2", "REMOVE", quantity=1),
    ]


def deliver(live_server, pool, records: list | None = None) -> str:
    """POST records (the guide's changes by default) to the pool's endpoint through real HTTP and
    wait until a warehouse worker has loaded them; returns the request id."""
    from pools.models import Delivery

    request_id, body = firehose_body(records or guide_changes())
    reply = http("POST", endpoint(live_server, pool), body, firehose_headers(request_id, pool.access_key))
    assert reply.status == 200, reply.body
    wait_for(
        lambda: Delivery.objects.filter(pool=pool, request_id=request_id, status="loaded").exists(),
        message="load",
    )
    return request_id
