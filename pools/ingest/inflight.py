"""How many large Firehose bodies one web process holds at once.

A body costs memory while it is read, checked and landed (about four times its size at worst:
its text and one pointer per record, pools/ingest/envelope.py). Bodies up to
INGEST_LARGE_BODY_BYTES go straight through; larger ones, and bodies of unknown length (chunked),
take one of INGEST_LARGE_BODIES permits, waiting up to INGEST_LARGE_BODY_WAIT seconds, after which
Firehose is answered 503 and sends the body again later (a non-200 is a promise that it will
come again), so a burst of 64 MiB bodies cannot take the web process's memory.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from django.conf import settings

BUSY = "Shoal is receiving as many large bodies as it holds at once; Firehose will send this one again"

_lock = threading.Lock()
_permits: threading.BoundedSemaphore | None = None


def _semaphore() -> threading.BoundedSemaphore:
    global _permits
    with _lock:
        if _permits is None:
            _permits = threading.BoundedSemaphore(settings.INGEST_LARGE_BODIES)
        return _permits


@contextlib.contextmanager
def permit(length: int | None) -> Iterator[bool]:
    """True inside when the body may be read now (small, or a permit was free in time)."""
    if length is not None and length <= settings.INGEST_LARGE_BODY_BYTES:
        yield True
        return
    permits = _semaphore()
    if not permits.acquire(timeout=settings.INGEST_LARGE_BODY_WAIT):
        yield False
        return
    try:
        yield True
    finally:
        permits.release()
