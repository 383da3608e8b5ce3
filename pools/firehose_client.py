"""A Firehose HTTP endpoint *sender*: delivers records the way Amazon Data Firehose does.

Used to replay files of DynamoDB change records into a Shoal endpoint, to benchmark ingest and to
test the endpoint against the real protocol: same headers, same body (pools/ingest/records.py),
same backoff, same request id on every retry, 413 permanent, anything but a well-formed 200
retried, except that 400, 401 and 404 stop a replay at once (the endpoint, key or body is wrong,
and retrying for the whole retry duration would only hide it). Standard library only, so it runs
on any machine with a checkout, without Django or a database. Whole files are replayed
concurrently by pools/firehose_replay.py.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import random
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from pools.ingest.records import firehose_body

MAX_RECORDS_PER_REQUEST = 10_000
PROTOCOL_VERSION = "1.0"
DEFAULT_SOURCE_ARN = "arn:aws:firehose:us-east-1:000000000000:deliverystream/shoal-replay"
RESPONSE_TIMEOUT_S = 180.0  # Firehose gives up on an attempt after 3 minutes
DEFAULT_RETRY_SECONDS = 7200.0  # the guide's "Retry duration"
INITIAL_BACKOFF_S = 1.0
MAX_BACKOFF_S = 120.0
BACKOFF_JITTER = 0.15
MAX_RESPONSE_BYTES = 1 << 20
# Answers that will not change on a retry. 413 concerns one batch (it is too large); the others
# concern every batch (a wrong URL, a wrong key, a request the endpoint cannot read), so a replay
# stops at the first one instead of retrying for hours.
STOP_STATUSES = frozenset({400, 401, 404})
PERMANENT_STATUSES = STOP_STATUSES | {413}


def batches(lines: Iterable[bytes], buffer_bytes: int) -> Iterator[list[bytes]]:
    """Group records as Firehose's size buffer does: raw size <= buffer_bytes, <= 10,000 records.

    A record larger than the buffer travels alone. Lazy, so a large file is never held in memory.
    """
    if buffer_bytes <= 0:
        raise ValueError("buffer_bytes must be positive")
    batch: list[bytes] = []
    size = 0
    for line in lines:
        n = len(line)
        if batch and (size + n > buffer_bytes or len(batch) >= MAX_RECORDS_PER_REQUEST):
            yield batch
            batch, size = [], 0
        batch.append(line)
        size += n
    if batch:
        yield batch


def build_request(
    records: list[bytes],
    *,
    request_id: str,
    gzip_body: bool,
    source_arn: str = DEFAULT_SOURCE_ARN,
) -> tuple[bytes, dict[str, str]]:
    """Body and headers of one Firehose delivery (without the access key, which the sender adds)."""
    body = firehose_body(request_id, records)
    headers = {
        "Content-Type": "application/json",
        "X-Amz-Firehose-Protocol-Version": PROTOCOL_VERSION,
        "X-Amz-Firehose-Request-Id": request_id,
        "X-Amz-Firehose-Source-Arn": source_arn,
    }
    if gzip_body:
        body = gzip.compress(body, compresslevel=6, mtime=0)
        headers["Content-Encoding"] = "gzip"
    headers["Content-Length"] = str(len(body))
    return body, headers


@dataclass(frozen=True)
class Prepared:
    """One batch's request, encoded and ready to send (and to resend on retries)."""

    request_id: str
    body: bytes
    headers: dict[str, str]
    records: int
    raw_bytes: int


@dataclass
class SendResult:
    """What happened to one batch; `sent_at`/`acked_at` are epoch seconds, for freshness figures."""

    request_id: str
    records: int
    raw_bytes: int
    body_bytes: int
    attempts: int
    status: int  # HTTP status of the last attempt; 0 when it got no response at all
    ok: bool
    latency_s: float | None  # ack latency of the successful attempt
    error: str = ""
    sent_at: float = 0.0
    acked_at: float | None = None


class FirehoseSender:
    """Sends batches to one endpoint with Firehose's retry policy.

    Thread-safe: each thread keeps its own keep-alive connection, so a pool of N threads behaves like
    N parallel Firehose deliveries without paying a TCP/TLS handshake per batch.
    """

    def __init__(
        self,
        endpoint: str,
        access_key: str = "",
        *,
        gzip_body: bool = False,
        timeout: float = RESPONSE_TIMEOUT_S,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
        initial_backoff: float = INITIAL_BACKOFF_S,
        source_arn: str = DEFAULT_SOURCE_ARN,
    ):
        parts = urlsplit(endpoint)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"endpoint must be an http(s) URL, got {endpoint!r}")
        self.endpoint = endpoint
        self.access_key = access_key
        self.gzip_body = gzip_body
        self.timeout = timeout
        self.retry_seconds = max(0.0, retry_seconds)
        self.initial_backoff = initial_backoff
        self.source_arn = source_arn
        self._aborted = threading.Event()
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        # Firehose sends path and query exactly as configured.
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._local = threading.local()
        self._connections: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def __enter__(self) -> FirehoseSender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def abort(self) -> None:
        """Stop retrying: sends waiting for their next attempt return at once, as failed."""
        self._aborted.set()

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()

    def prepare(self, records: list[bytes], *, request_id: str | None = None) -> Prepared:
        """Build one batch's request (for callers that want the encoding done ahead of time)."""
        request_id = request_id or str(uuid.uuid4())
        body, headers = build_request(
            records, request_id=request_id, gzip_body=self.gzip_body, source_arn=self.source_arn
        )
        if self.access_key:
            headers["X-Amz-Firehose-Access-Key"] = self.access_key
        return Prepared(request_id, body, headers, len(records), sum(map(len, records)))

    def send(self, records: list[bytes], *, request_id: str | None = None) -> SendResult:
        """Deliver one batch, retrying until it is acknowledged, refused for good (PERMANENT_STATUSES)
        or out of time."""
        return self.send_prepared(self.prepare(records, request_id=request_id))

    def send_prepared(self, batch: Prepared) -> SendResult:
        """Deliver a prepared batch with Firehose's retry policy.

        As in Firehose, the retry clock starts after the first failure and counts only the time
        between attempts, not the time spent waiting for answers.
        """
        request_id, body, headers = batch.request_id, batch.body, batch.headers
        result = SendResult(
            request_id=request_id,
            records=batch.records,
            raw_bytes=batch.raw_bytes,
            body_bytes=len(body),
            attempts=0,
            status=0,
            ok=False,
            latency_s=None,
            sent_at=time.time(),
        )
        if self._aborted.is_set():  # the replay stopped before this batch's turn
            result.error = "not sent: the replay was stopped"
            return result
        waited = 0.0
        backoff = self.initial_backoff
        while True:
            result.attempts += 1
            started = time.monotonic()
            result.status, result.error = self._attempt(body, headers, request_id)
            if result.status == 200 and not result.error:
                result.ok = True
                result.latency_s = time.monotonic() - started
                result.acked_at = time.time()
                return result
            if result.status in PERMANENT_STATUSES or waited >= self.retry_seconds:
                return result
            jitter = random.uniform(1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER)
            pause = min(backoff * jitter, MAX_BACKOFF_S, self.retry_seconds - waited)
            if self._aborted.wait(pause):
                result.error = f"aborted while retrying; last error: {result.error}"
                return result
            waited += pause
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self.timeout)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _attempt(self, body: bytes, headers: dict[str, str], request_id: str) -> tuple[int, str]:
        """One POST: (status, error message). An empty message means a valid acknowledgement."""
        conn = self._connection()
        # A keep-alive socket the server has closed in the meantime fails on first use; resend once
        # on a fresh socket instead of counting that as a failed delivery.
        for fresh in (conn.sock is None, True):
            try:
                conn.request("POST", self._target, body, headers)
                response = conn.getresponse()
                data = response.read(MAX_RESPONSE_BYTES + 1)
                if not response.isclosed():
                    conn.close()  # body too large: the connection is not reusable
                return response.status, _judge(response, data, request_id)
            except (BrokenPipeError, ConnectionResetError) as exc:
                conn.close()
                if fresh:
                    return 0, f"connection error: {type(exc).__name__}: {exc}"
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                return 0, f"connection error: {type(exc).__name__}: {exc}"
        raise AssertionError("unreachable")


def _judge(response: http.client.HTTPResponse, data: bytes, request_id: str) -> str:
    """The error Firehose would log for this response, or "" for a valid 200 acknowledgement."""
    doc = None
    with contextlib.suppress(ValueError):
        doc = json.loads(data) if data else None
    message = doc.get("errorMessage") if isinstance(doc, dict) else None
    if response.status != 200:
        if isinstance(message, str) and message:
            return message
        snippet = data[:200].decode("utf-8", "replace").strip()
        return f"HTTP {response.status} {response.reason}" + (f": {snippet}" if snippet else "")
    # Firehose treats a 200 that breaks the response rules as a 500 and retries it.
    problem = ""
    content_type = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
    encoding = (response.getheader("Content-Encoding") or "").strip().lower()
    if content_type != "application/json":
        problem = f"Content-Type is {content_type or 'missing'}, not application/json"
    elif encoding not in {"", "identity"}:
        problem = f"Content-Encoding {encoding} is not allowed"
    elif len(data) > MAX_RESPONSE_BYTES:
        problem = "body is larger than 1 MiB"
    elif data and response.getheader("Content-Length") is None:
        problem = "Content-Length is missing"
    elif not isinstance(doc, dict):
        problem = "body is not a JSON object"
    elif doc.get("requestId") != request_id:
        problem = f"requestId {doc.get('requestId')!r} does not echo {request_id!r}"
    elif not isinstance(doc.get("timestamp"), int) or isinstance(doc.get("timestamp"), bool):
        problem = "timestamp is not an integer"
    return f"malformed 200 response (counts as 500): {problem}" if problem else ""
