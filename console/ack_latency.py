"""The Firehose endpoint's acknowledgement latency: observed in the web process on every answer,
added up in memory and flushed to a Redis hash by a background thread (never on the request's
path), so that /metrics (console/access/metrics.py) shows one histogram whichever web process
answered. Kept here, below the apps, because the ingest path records into it.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import Counter

import redis
from django.conf import settings

log = logging.getLogger(__name__)

ACK_KEY = "shoal:metrics:ack_seconds"
# Seconds; Firehose waits up to 3 minutes for an answer, Shoal should answer in milliseconds.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, math.inf)
FLUSH_SECONDS = 1.0


class _AckRecorder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: Counter[str] = Counter()
        self._sum: dict[str, float] = {}
        self._pid = 0

    def observe(self, code: int, seconds: float) -> None:
        bucket = next(b for b in ACK_BUCKETS if seconds <= b)
        with self._lock:
            self._pending[f"{code}|{le(bucket)}"] += 1
            self._sum[str(code)] = self._sum.get(str(code), 0.0) + seconds
            if self._pid != os.getpid():  # first observation in this (possibly forked) process
                self._pid = os.getpid()
                threading.Thread(target=self._flush_forever, name="ack-metrics", daemon=True).start()

    def _flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, sums = self._pending, self._sum
            self._pending, self._sum = Counter(), {}
        if not pending:
            return
        try:
            pipe = _redis().pipeline(transaction=False)
            for field, n in pending.items():
                pipe.hincrby(ACK_KEY, field, n)
            for code, total in sums.items():
                pipe.hincrbyfloat(ACK_KEY, f"{code}|sum", total)
            pipe.execute()
        except Exception as exc:  # Redis down: keep the counts for the next flush
            log.debug("ack metrics not flushed: %s", exc)
            with self._lock:
                self._pending.update(pending)
                for code, total in sums.items():
                    self._sum[code] = self._sum.get(code, 0.0) + total


ack_latency = _AckRecorder()


def le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(bound)


def _redis():
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
