"""A query's answer from the warehouse worker to the web process, through a Redis list.

The worker pushes a header frame (statistics, or the error), then the result's bytes in chunks,
then an end frame; the web process pops them as it writes the HTTP response. The worker waits
while MAX_QUEUED chunks are unread, so the web process holds one chunk at a time whatever the
size of the result (a Parquet export of millions of rows streams in constant memory there).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import redis
from django.conf import settings

CHUNK_BYTES = 1024 * 1024
MAX_QUEUED = 8
TTL_SECONDS = 120  # a channel nobody reads any more disappears
_HEADER, _DATA, _END = b"H", b"D", b"E"


class ChannelTimeout(Exception):
    pass


_clients: dict[str, redis.Redis] = {}


def client() -> redis.Redis:
    """One client (and connection pool) per process, so a request does not open a connection.
    No socket timeout: BLPOP waits as long as it is told (a slow query)."""
    url = settings.REDIS_URL
    found = _clients.get(url)
    if found is None:
        found = _clients[url] = redis.Redis.from_url(url, socket_connect_timeout=2)
    return found


def new_channel() -> str:
    return f"shoal:api:result:{uuid.uuid4().hex}"


def _cancel_key(channel: str) -> str:
    return channel + ":cancel"


def publish(channel: str, header: dict, data: bytes = b"", *, reader_timeout: float = 60.0) -> bool:
    """Send `header` then `data` in chunks; False if the reader went away (or stopped reading
    for reader_timeout seconds), in which case the rest is dropped."""
    r = client()
    pipe = r.pipeline()
    pipe.rpush(channel, _HEADER + json.dumps(header).encode())
    pipe.expire(channel, TTL_SECONDS)
    pipe.execute()
    view = memoryview(data)
    for start in range(0, len(view), CHUNK_BYTES):
        deadline = time.monotonic() + reader_timeout
        while r.llen(channel) >= MAX_QUEUED:
            if r.exists(_cancel_key(channel)) or time.monotonic() > deadline:
                r.delete(channel)
                return False
            time.sleep(0.002)
        if r.exists(_cancel_key(channel)):
            r.delete(channel)
            return False
        pipe = r.pipeline()
        pipe.rpush(channel, _DATA + bytes(view[start : start + CHUNK_BYTES]))
        pipe.expire(channel, TTL_SECONDS)
        pipe.execute()
    pipe = r.pipeline()
    pipe.rpush(channel, _END)
    pipe.expire(channel, TTL_SECONDS)
    pipe.execute()
    return True


class Reader:
    """The web side of a channel: `header(timeout)` first, then iterate the chunks."""

    def __init__(self, channel: str):
        self.channel = channel
        self.redis = client()
        self.done = False

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

    def chunks(self, timeout: float = 60.0) -> Iterator[bytes]:
        try:
            while True:
                frame = self._pop(timeout)
                if frame[:1] == _END:
                    self.done = True
                    return
                yield frame[1:]
        finally:
            self.close()

    def read_all(self, timeout: float = 60.0) -> bytes:
        return b"".join(self.chunks(timeout))

    def close(self) -> None:
        if not self.done:
            # The client went away mid-answer: tell the worker to stop sending.
            pipe = self.redis.pipeline()
            pipe.set(_cancel_key(self.channel), 1, ex=TTL_SECONDS)
            pipe.delete(self.channel)
            pipe.execute()
            self.done = True
