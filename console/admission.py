"""Admission of users' queries: the web process's share of it, and the figures /metrics shows.

A query is admitted twice, by two bounds that each protect something different:

- In the web process, a request that waits on the warehouse (a query, a Preview, an export
  streaming out) takes one of WEB_QUERY_SLOTS slots of its process, or is answered at once with
  Busy (429 with Retry-After for the API). The process has WEB_THREADS threads; the slots are
  fewer, so the rest are always free for what must never wait on a query: Firehose deliveries,
  /healthz and /readyz, the console's pages.
- In the warehouse worker (console/user_queries.py), each identity (a user, an API key) has a
  running and a queued bound, served round-robin: that is where one identity's heavy queries are
  kept from holding another's small one.

Both record what they decide in a Redis hash, so that /metrics shows queries running, queued and
refused per identity kind whichever process answers the scrape.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Iterable, Iterator

import redis
from django.conf import settings

from console.warehouse_client import WarehouseUnavailable

log = logging.getLogger(__name__)

FIGURES_KEY = "shoal:admission:figures"


class Busy(WarehouseUnavailable):
    """The query was not admitted; `retry_after` is when trying again makes sense (seconds)."""

    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after


def kind(identity: str) -> str:
    """The identity's kind for the figures: user, key, or system (a Replica check)."""
    head = identity.split(":", 1)[0]
    return head if head in {"user", "key"} else "system"


# --- the figures ------------------------------------------------------------------------------

_clients: dict[str, redis.Redis] = {}


def _redis() -> redis.Redis:
    url = settings.REDIS_URL
    found = _clients.get(url)
    if found is None:
        found = _clients[url] = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    return found


# What each decision does to the figures: (field suffix, increment) pairs.
_EFFECTS = {
    "queued": (("queued", 1), ("admitted_total", 1)),
    "started": (("queued", -1), ("running", 1)),
    "finished": (("running", -1),),
    "refused": (("refused_total", 1),),
    "busy": (("busy_total", 1),),
}


def record_worker(identity: str, decision: str) -> None:
    """Count a decision; figures are best effort (a Redis outage never fails a query)."""
    prefix = kind(identity)
    try:
        pipe = _redis().pipeline(transaction=False)
        for suffix, step in _EFFECTS[decision]:
            pipe.hincrby(FIGURES_KEY, f"{prefix}:{suffix}", step)
        pipe.execute()
    except redis.RedisError as exc:
        log.debug("admission figures not recorded: %s", exc)


def reset_gauges() -> None:
    """A warehouse worker starting has nothing running or queued: gauges a killed worker left in
    Redis are zeroed (the totals are kept)."""
    try:
        figures = _redis().hgetall(FIGURES_KEY)
        gauges = [k for k in figures if _text(k).endswith((":running", ":queued"))]
        if gauges:
            _redis().hset(FIGURES_KEY, mapping=dict.fromkeys(gauges, 0))
    except redis.RedisError as exc:
        log.debug("admission figures not reset: %s", exc)


def figures() -> dict[str, int]:
    """{"user:running": n, "key:refused_total": n, ...} as recorded."""
    try:
        raw = _redis().hgetall(FIGURES_KEY)
    except redis.RedisError:
        return {}
    return {_text(k): max(0, int(v)) for k, v in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# --- the web process's slots --------------------------------------------------------------------

_slots_lock = threading.Lock()
_held: Counter[str] = Counter()


def per_identity_slots() -> int:
    """An identity holds no more slots than the warehouse would run and queue for it."""
    return settings.SQL_MAX_CONCURRENT_PER_USER + settings.SQL_MAX_QUEUED_PER_USER


def take_slot(identity: str) -> None:
    """Take one of this process's query slots for `identity`, or raise Busy at once."""
    with _slots_lock:
        mine_full = _held[identity] >= per_identity_slots()
        all_full = sum(_held.values()) >= settings.WEB_QUERY_SLOTS
        if not (mine_full or all_full):
            _held[identity] += 1
    if mine_full:
        record_worker(identity, "refused")
        raise Busy(
            f"You already have {_held[identity]} queries waiting on the warehouse "
            f"(SQL_MAX_CONCURRENT_PER_USER + SQL_MAX_QUEUED_PER_USER); try again when one has finished.",
            retry_after=2,
        )
    if all_full:
        record_worker(identity, "busy")
        raise Busy(
            f"Shoal is answering as many queries as it allows at once (WEB_QUERY_SLOTS="
            f"{settings.WEB_QUERY_SLOTS} per web process); try again in a moment.",
            retry_after=2,
        )


def give_slot(identity: str) -> None:
    with _slots_lock:
        _held[identity] -= 1
        if _held[identity] <= 0:
            del _held[identity]


@contextlib.contextmanager
def slot(identity: str) -> Iterator[None]:
    take_slot(identity)
    try:
        yield
    finally:
        give_slot(identity)


class SlotHeld:
    """A streamed answer that holds its slot until it has been sent, or the response is closed
    (Django closes it whether or not the client read it all)."""

    def __init__(self, chunks: Iterable[bytes], identity: str):
        self._chunks = iter(chunks)
        self._identity = identity
        self._held = True

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self._chunks)

    def close(self) -> None:
        closer = getattr(self._chunks, "close", None)
        try:
            if closer is not None:
                closer()
        finally:
            if self._held:
                self._held = False
                give_slot(self._identity)
