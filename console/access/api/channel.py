"""A query's answer from the warehouse worker to the web process, through a Redis list.

The worker pushes a header frame (statistics, or the error), then the result's bytes in chunks as
the engine writes them, then an end frame, or an error frame when the query fails half way (a
byte limit, a time limit). The web process pops them as it writes the HTTP response. The worker
waits while MAX_QUEUED chunks are unread, so neither side holds more than a few chunks whatever
the size of the result (a 3 GB CSV export streams in constant memory on both).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Generator, Iterable

import redis
from django.conf import settings

from console.warehouse import WarehouseError

CHUNK_BYTES = 1024 * 1024
MAX_QUEUED = 8
TTL_SECONDS = 120  # a channel nobody reads any more disappears
READ_TIMEOUT = 60.0  # how long the web process waits for the next chunk
_HEADER, _DATA, _END, _ERROR = b"H", b"D", b"E", b"X"


class ChannelTimeout(Exception):
    pass


class StreamFailed(Exception):
    """The query failed after its first bytes were sent (ClickHouse's code, when known)."""

    def __init__(self, message: str, code: int | None):
        super().__init__(message)
        self.code = code


_clients: dict[str, redis.Redis] = {}


def client() -> redis.Redis:
    """One client (and connection pool) per process, so a request does not open a connection.
    Its socket timeout is longer than any BLPOP it makes (a slow query's header, a chunk): redis-py
    8 would otherwise cut every wait at 5 s and a query over 5 s would fail as a Redis outage."""
    url = settings.REDIS_URL
    found = _clients.get(url)
    if found is None:
        longest = header_wait() + READ_TIMEOUT + 5
        found = _clients[url] = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=longest)
    return found


def header_wait() -> float:
    """How long the web process waits for a query's first frame: the warehouse's answer time, and
    the query's own time limit once for running and once more for each round of its identity's
    queue (console/user_queries.py) it may wait through."""
    rounds = 1 + math.ceil(settings.SQL_MAX_QUEUED_PER_USER / settings.SQL_MAX_CONCURRENT_PER_USER)
    return settings.WAREHOUSE_TIMEOUT + settings.SQL_MAX_EXECUTION_SECONDS * rounds


def new_channel() -> str:
    return f"shoal:api:result:{uuid.uuid4().hex}"


def _cancel_key(channel: str) -> str:
    return channel + ":cancel"


def publish(channel: str, header: dict, data: bytes = b"", *, reader_timeout: float = 60.0) -> bool:
    """Send `header` then `data`; see publish_stream."""
    return publish_stream(channel, header, [data] if data else [], reader_timeout=reader_timeout)


def publish_stream(
    channel: str, header: dict, blocks: Iterable[bytes], *, reader_timeout: float = 60.0
) -> bool:
    """Send `header`, then each block's bytes in chunks, then the end; a WarehouseError raised by
    `blocks` ends the answer with an error frame instead. False if the reader went away (or
    stopped reading for reader_timeout seconds), in which case the rest is dropped."""
    r = client()
    _push(r, channel, _HEADER + json.dumps(header).encode())
    try:
        for block in blocks:
            view = memoryview(block)
            for start in range(0, len(view), CHUNK_BYTES):
                if not _room(r, channel, reader_timeout):
                    r.delete(channel)
                    return False
                _push(r, channel, _DATA + bytes(view[start : start + CHUNK_BYTES]))
    except WarehouseError as exc:
        _push(r, channel, _ERROR + json.dumps({"error": str(exc), "code": exc.code}).encode())
        return True
    _push(r, channel, _END)
    return True


def _push(r: redis.Redis, channel: str, frame: bytes) -> None:
    pipe = r.pipeline()
    pipe.rpush(channel, frame)
    pipe.expire(channel, TTL_SECONDS)
    pipe.execute()


def _room(r: redis.Redis, channel: str, reader_timeout: float) -> bool:
    """Wait until the reader has taken enough chunks; False if it cancelled or stopped reading."""
    deadline = time.monotonic() + reader_timeout
    while r.llen(channel) >= MAX_QUEUED:
        if r.exists(_cancel_key(channel)) or time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return not r.exists(_cancel_key(channel))


class Reader:
    """The web side of a channel: `header(timeout)` first, then iterate the chunks."""

    def __init__(self, channel: str, on_close: Callable[[], None] | None = None):
        self.channel = channel
        self.redis = client()
        self.done = False
        self._on_close = on_close

    def _pop(self, timeout: float) -> bytes:
        item = self.redis.blpop([self.channel], timeout=max(1, int(timeout + 0.999)))
        if item is None:
            raise ChannelTimeout(f"no answer within {timeout:g} s")
        return item[1]

    def header(self, timeout: float) -> dict:
        frame = self._pop(timeout)
        if frame[:1] != _HEADER:
            raise ChannelTimeout("the answer started with no header")
        return json.loads(frame[1:])

    def chunks(self, timeout: float = READ_TIMEOUT) -> Generator[bytes, None, None]:
        try:
            while True:
                frame = self._pop(timeout)
                if frame[:1] == _END:
                    self.done = True
                    return
                if frame[:1] == _ERROR:
                    self.done = True
                    failed = json.loads(frame[1:])
                    raise StreamFailed(failed["error"], failed.get("code"))
                yield frame[1:]
        finally:
            self.close()

    def read_all(self, timeout: float = READ_TIMEOUT) -> bytes:
        return b"".join(self.chunks(timeout))

    def close(self) -> None:
        if not self.done:
            # The client went away mid-answer: tell the worker to stop sending.
            pipe = self.redis.pipeline()
            pipe.set(_cancel_key(self.channel), 1, ex=TTL_SECONDS)
            pipe.delete(self.channel)
            pipe.execute()
            self.done = True
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()
