"""Pacing: a Firehose request that finds its pool's loader behind waits a moment for room.

Answered 503 at once, every sender that arrives while a batch loads backs off for a second or
more (Firehose's retry policy), all of them together: the loader then finishes, finds nothing
waiting and idles until they come back. Waiting up to INGEST_BACKLOG_WAIT seconds for the
backlog to fall under the soft limit turns that into flow control: the sender is answered as soon
as there is room, and only after the wait is it refused (503, Firehose retries; nothing is lost).

Waiting holds a web thread, so at most INGEST_BACKLOG_WAITERS requests per web process wait; the
others are refused at once, and the threads left over stay free for the Firehose requests that
land, /healthz and pages. Only the soft limit waits: past the hard limit, or with no warehouse
worker, the backlog will not shrink in a moment.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings

from pools.ingest.landing import Pressure, pressure
from pools.models import DataPool

POLL_SECONDS = 0.1

_lock = threading.Lock()
_waiters: threading.BoundedSemaphore | None = None


def _semaphore() -> threading.BoundedSemaphore:
    global _waiters
    with _lock:
        if _waiters is None:
            _waiters = threading.BoundedSemaphore(max(1, settings.INGEST_BACKLOG_WAITERS))
        return _waiters


def room(pool: DataPool) -> Pressure:
    """The pool's pressure after waiting (bounded) for the loader to make room: empty when the
    request may land now."""
    found = pressure(pool)
    if not found.passing or settings.INGEST_BACKLOG_WAIT <= 0 or settings.INGEST_BACKLOG_WAITERS <= 0:
        return found
    waiters = _semaphore()
    if not waiters.acquire(blocking=False):
        return found
    try:
        deadline = time.monotonic() + settings.INGEST_BACKLOG_WAIT
        while found.passing and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            found = pressure(pool)
        return found
    finally:
        waiters.release()
