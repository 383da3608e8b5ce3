"""A per-pool gate between loads and the creation of a Materialized View on the pool.

Loads pass the gate together (shared); creating a view closes it (exclusive) for the moment it
takes to attach the view and list the deliveries already in the table. Every delivery is then
either in that list (the backfill copies it) or inserted after the view exists (the view copies
it): none is copied twice and none is missed.

The gate lives in the warehouse worker process, which with chDB is the only process that loads.
With a ClickHouse server and several warehouse workers it would need to be a distributed lock
(see docs/status.md).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from contextlib import contextmanager


class _Gate:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._sharing = 0
        self._closed = False

    @contextmanager
    def shared(self):
        with self._cond:
            self._cond.wait_for(lambda: not self._closed)
            self._sharing += 1
        try:
            yield
        finally:
            with self._cond:
                self._sharing -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self):
        with self._cond:
            self._cond.wait_for(lambda: not self._closed)
            self._closed = True  # new loads wait from here on
            self._cond.wait_for(lambda: self._sharing == 0)
        try:
            yield
        finally:
            with self._cond:
                self._closed = False
                self._cond.notify_all()


_gates: dict[int, _Gate] = defaultdict(_Gate)
_lock = threading.Lock()


def gate(pool_id: int) -> _Gate:
    with _lock:
        return _gates[pool_id]
