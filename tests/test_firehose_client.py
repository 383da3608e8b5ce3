"""The Firehose sender against a tiny local endpoint: batching, request shape, retries, replay."""

from __future__ import annotations

import base64
import collections
import gzip
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pools.firehose_client import (
    DEFAULT_SOURCE_ARN,
    MAX_RECORDS_PER_REQUEST,
    FirehoseSender,
    batches,
    build_request,
)
from pools.firehose_replay import replay
from pools.samples import make_records

ACCESS_KEY = "test-access-key"


class Endpoint:
    """Records every request; `answer(request, attempt)` picks (status, JSON doc or raw bytes)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.attempts: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = 0.0
        self.drop_connections = False  # close after each answer without saying so
        self.answer: Callable[[dict, int], tuple[int, object]] = self.ok

    @staticmethod
    def ok(request: dict, attempt: int) -> tuple[int, object]:
        return 200, {"requestId": request["body"]["requestId"], "timestamp": int(time.time() * 1000)}

    def delivered(self) -> list[bytes]:
        """Records of requests answered 200, once per request id (what Shoal would keep)."""
        seen, out = set(), []
        for r in self.requests:
            if r["status"] == 200 and r["request_id"] not in seen:
                seen.add(r["request_id"])
                out += [base64.b64decode(rec["data"]) for rec in r["body"]["records"]]
        return out


def _handler(endpoint: Endpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the sender expects

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            data = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
            request = {
                "path": self.path,
                "headers": dict(self.headers.items()),
                "request_id": self.headers.get("X-Amz-Firehose-Request-Id"),
                "raw": raw,
                "body": json.loads(data),
            }
            with endpoint.lock:
                endpoint.attempts[request["request_id"]] += 1
                attempt = endpoint.attempts[request["request_id"]]
                endpoint.in_flight += 1
                endpoint.max_in_flight = max(endpoint.max_in_flight, endpoint.in_flight)
            time.sleep(endpoint.delay)
            status, doc = endpoint.answer(request, attempt)
            request["status"] = status
            with endpoint.lock:
                endpoint.in_flight -= 1
                endpoint.requests.append(request)
            payload = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            if endpoint.drop_connections:
                self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def endpoint() -> Iterator[tuple[Endpoint, str]]:
    ep = Endpoint()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(ep))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield ep, f"http://127.0.0.1:{server.server_address[1]}/firehose/ingest?pipeline=7"
    finally:
        server.shutdown()
        server.server_close()


def _sender(url: str, **kwargs: object) -> FirehoseSender:
    kwargs.setdefault("initial_backoff", 0.01)
    return FirehoseSender(url, ACCESS_KEY, **kwargs)


def test_it_batches_by_raw_size():
    records = [b"a" * 100] * 7 + [b"big" * 200] + [b"b" * 100] * 2
    got = list(batches(iter(records), 350))
    assert [len(b) for b in got] == [3, 3, 1, 1, 2]
    assert got[3] == [b"big" * 200]  # larger than the buffer: travels alone
    assert all(sum(map(len, b)) <= 350 for b in got if len(b) > 1)
    assert [r for b in got for r in b] == records


def test_it_caps_a_batch_at_10000_records():
    got = list(batches([b"{}"] * 25_000, 1 << 30))
    assert [len(b) for b in got] == [MAX_RECORDS_PER_REQUEST, MAX_RECORDS_PER_REQUEST, 5_000]


def test_it_builds_the_body_without_gzip_by_default():
    body, headers = build_request([b'{"a":1}', b""], request_id="rid-1", gzip_body=False)
    doc = json.loads(body)
    assert doc["requestId"] == "rid-1"
    assert isinstance(doc["timestamp"], int) and abs(doc["timestamp"] - time.time() * 1000) < 60_000
    assert doc["records"] == [{"data": base64.b64encode(b'{"a":1}').decode()}, {"data": ""}]
    assert "Content-Encoding" not in headers
    assert headers["Content-Length"] == str(len(body))


def test_it_sends_firehose_headers_and_body(endpoint):
    ep, url = endpoint
    records = make_records(20, seed=3)
    with _sender(url) as sender:
        result = sender.send(records)
    assert result.ok and result.status == 200 and result.attempts == 1
    assert result.records == 20 and result.raw_bytes == sum(map(len, records))
    assert result.latency_s is not None and result.acked_at is not None
    (request,) = ep.requests
    assert request["path"] == "/firehose/ingest?pipeline=7"
    headers = request["headers"]
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Amz-Firehose-Protocol-Version"] == "1.0"
    assert headers["X-Amz-Firehose-Access-Key"] == ACCESS_KEY
    assert headers["X-Amz-Firehose-Source-Arn"] == DEFAULT_SOURCE_ARN
    assert headers["X-Amz-Firehose-Request-Id"] == result.request_id == request["body"]["requestId"]
    assert "Content-Encoding" not in headers
    assert isinstance(request["body"]["timestamp"], int)
    assert [base64.b64decode(r["data"]) for r in request["body"]["records"]] == records


def test_it_gzips_the_body_when_asked(endpoint):
    ep, url = endpoint
    records = make_records(50, seed=4)
    with _sender(url, gzip_body=True) as sender:
        result = sender.send(records)
    assert result.ok
    (request,) = ep.requests
    assert request["headers"]["Content-Encoding"] == "gzip"
    assert request["raw"][:2] == b"\x1f\x8b" and result.body_bytes == len(request["raw"])
    assert ep.delivered() == records


def test_it_retries_a_503_with_the_same_request_id(endpoint):
    ep, url = endpoint

    def answer(request, attempt):
        if attempt == 1:
            return 503, {"requestId": request["request_id"], "timestamp": 1, "errorMessage": "busy"}
        return Endpoint.ok(request, attempt)

    ep.answer = answer
    with _sender(url) as sender:
        result = sender.send([b'{"x":1}'])
    assert result.ok and result.attempts == 2 and result.status == 200
    assert [r["status"] for r in ep.requests] == [503, 200]
    assert {r["request_id"] for r in ep.requests} == {result.request_id}
    assert {r["body"]["requestId"] for r in ep.requests} == {result.request_id}


def test_it_does_not_retry_a_413(endpoint):
    ep, url = endpoint
    ep.answer = lambda request, attempt: (413, {"errorMessage": "too large"})
    with _sender(url) as sender:
        result = sender.send([b'{"x":1}'])
    assert not result.ok and result.status == 413 and result.attempts == 1
    assert result.error == "too large"
    assert len(ep.requests) == 1


def test_it_gives_up_when_the_retry_duration_is_spent(endpoint):
    ep, url = endpoint
    ep.answer = lambda request, attempt: (500, {"errorMessage": "database unavailable"})
    started = time.monotonic()
    with _sender(url, retry_seconds=0.2, initial_backoff=0.02) as sender:
        result = sender.send([b'{"x":1}'])
    assert time.monotonic() - started < 2
    assert not result.ok and result.status == 500 and result.error == "database unavailable"
    assert result.attempts >= 3 and result.attempts == len(ep.requests)  # 0.02 + 0.04 + 0.08 + ...
    assert len({r["request_id"] for r in ep.requests}) == 1


def test_it_sends_once_with_a_zero_retry_duration(endpoint):
    ep, url = endpoint
    ep.answer = lambda request, attempt: (503, {})
    with _sender(url, retry_seconds=0) as sender:
        result = sender.send([b"{}"])
    assert not result.ok and result.attempts == 1 and result.error.startswith("HTTP 503")


def test_it_retries_a_200_that_does_not_echo_the_request_id(endpoint):
    ep, url = endpoint

    def answer(request, attempt):
        if attempt == 1:
            return 200, {"requestId": "someone-else", "timestamp": 1}
        return Endpoint.ok(request, attempt)

    ep.answer = answer
    with _sender(url) as sender:
        result = sender.send([b"{}"])
    assert result.ok and result.attempts == 2


def test_it_reconnects_when_the_server_drops_a_kept_alive_connection(endpoint):
    ep, url = endpoint
    ep.drop_connections = True
    with _sender(url, retry_seconds=0) as sender:
        results = [sender.send([b"{}"]) for _ in range(3)]
    assert [(r.ok, r.attempts) for r in results] == [(True, 1)] * 3


def test_it_retries_connection_errors():
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with _sender(f"http://127.0.0.1:{port}/", retry_seconds=0.05) as sender:
        result = sender.send([b"{}"])
    assert not result.ok and result.status == 0 and result.attempts >= 2
    assert result.error.startswith("connection error")


def test_it_replays_every_record_exactly_once_with_concurrency_4(endpoint):
    ep, url = endpoint
    ep.delay = 0.005

    def answer(request, attempt):
        # Every fifth batch fails once, so retries are part of the run.
        if attempt == 1 and int(request["request_id"].replace("-", ""), 16) % 5 == 0:
            return 503, {"errorMessage": "try again"}
        return Endpoint.ok(request, attempt)

    ep.answer = answer
    records = make_records(3000, seed=5)
    calls: list[tuple[int, int]] = []
    summary = replay(
        iter(records),
        endpoint=url,
        access_key=ACCESS_KEY,
        buffer_bytes=64 * 1024,
        gzip_body=False,
        concurrency=4,
        progress=lambda n, b: calls.append((n, b)),
        initial_backoff=0.01,
    )
    assert collections.Counter(ep.delivered()) == collections.Counter(records)
    assert len(ep.delivered()) == len(records)
    assert summary.failed_batches == 0 and summary.records == 3000
    assert summary.raw_bytes == sum(map(len, records))
    assert summary.batches == len(summary.results) == len(ep.attempts)
    assert summary.ack_p50_ms is not None and summary.ack_p50_ms <= summary.ack_p99_ms
    assert summary.records_per_s > 0
    assert calls[-1] == (3000, summary.raw_bytes) and len(calls) == summary.batches
    assert ep.max_in_flight >= 2
    assert {r.request_id for r in summary.results} == set(ep.attempts)


def test_it_generates_valid_change_records():
    records = make_records(400, seed=7)
    assert records == make_records(400, seed=7)
    assert records != make_records(400, seed=8)
    events = collections.Counter()
    for raw in records:
        doc = json.loads(raw)
        ddb, event = doc["dynamodb"], doc["eventName"]
        events[event] += 1
        assert ("NewImage" in ddb) == (event != "REMOVE")
        assert ("OldImage" in ddb) == (event != "INSERT")
        image = ddb.get("NewImage") or ddb["OldImage"]
        assert ddb["Keys"] == {"order_id": image["order_id"], "timestamp": image["timestamp"]}
        assert len(str(ddb["ApproximateCreationDateTime"])) == 13
        assert ddb["ApproximateCreationDateTimePrecision"] == "MILLISECOND"
        assert doc["eventSource"] == "aws:dynamodb" and doc["recordFormat"] == "application/json"
    assert set(events) == {"INSERT", "MODIFY", "REMOVE"}


@pytest.mark.parametrize("status", [400, 401, 404])
def test_it_does_not_retry_a_permanent_refusal(endpoint, status):
    ep, url = endpoint
    ep.answer = lambda request, attempt: (status, {"errorMessage": f"refused with {status}"})
    with _sender(url) as sender:  # the default retry duration: 7,200 s
        result = sender.send([b'{"x":1}'])
    assert not result.ok and result.status == status and result.attempts == 1
    assert result.error == f"refused with {status}"


@pytest.mark.parametrize("status", [400, 401, 404])
def test_the_replay_command_stops_at_once_on_a_permanent_refusal(endpoint, tmp_path, status):
    from django.core.management import CommandError, call_command

    ep, url = endpoint
    ep.answer = lambda request, attempt: (status, {"errorMessage": "no Data Pool at this endpoint"})
    source = tmp_path / "changes.jsonl"
    source.write_bytes(b"\n".join(make_records(2000, seed=3)))
    started = time.monotonic()
    with pytest.raises(CommandError) as err:
        call_command(
            "firehose_replay",
            str(source),
            endpoint=url,
            access_key=ACCESS_KEY,
            buffer_mib=0.01,
            concurrency=2,
        )
    assert time.monotonic() - started < 10
    assert f"HTTP {status}" in str(err.value) and "no Data Pool at this endpoint" in str(err.value)
    # It stopped sending: far fewer requests than the file's batches, each sent once.
    assert len(ep.requests) <= 6
    assert max(ep.attempts.values()) == 1
