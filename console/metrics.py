"""Prometheus metrics for /metrics, derived at scrape time from Django's database and Redis.

Nothing is counted in a process's memory, so the figures are the same whichever web process
answers the scrape, survive restarts, and need no multi-process collector files: pool figures
come from the deliveries table, the ack latency histogram from a Redis hash that every web
process adds its observations to in the background (never on the request's path).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator

import redis
from django.conf import settings
from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from console import health
from pools.ingest import journal
from pools.models import DataPool, Delivery
from views_mv.models import Backfill, MaterializedView

log = logging.getLogger(__name__)

ACK_KEY = "shoal:metrics:ack_seconds"
# Seconds; Firehose waits up to 3 minutes for an answer, Shoal should answer in milliseconds.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, math.inf)
FLUSH_SECONDS = 1.0


# --- ack latency: observed in the web process, flushed to Redis by a background thread ----------


class _AckRecorder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: Counter[str] = Counter()
        self._sum: dict[str, float] = {}
        self._pid = 0

    def observe(self, code: int, seconds: float) -> None:
        bucket = next(b for b in ACK_BUCKETS if seconds <= b)
        with self._lock:
            self._pending[f"{code}|{_le(bucket)}"] += 1
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


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(bound)


def _redis():
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)


# --- the scrape ------------------------------------------------------------------------------------


class ShoalCollector:
    """Reads the figures when Prometheus scrapes."""

    def collect(self) -> Iterator:
        yield from self._pools()
        yield from self._views()
        yield from self._ack()
        yield from self._health()

    def _pools(self) -> Iterator:
        names = dict(DataPool.objects.values_list("pk", "name"))
        # What pruned deliveries counted (pools/retention.py): counters never go down.
        pruned = {
            pk: (records, size, loaded_)
            for pk, records, size, loaded_ in DataPool.objects.values_list(
                "pk", "pruned_records", "pruned_bytes", "pruned_loaded"
            )
        }
        waiting = [Delivery.Status.LANDED, Delivery.Status.LOADING]
        rows = (
            Delivery.objects.values("pool_id")
            .annotate(
                records=Sum("record_count"),
                bytes=Sum("body_bytes"),
                loaded=Sum("loaded_count", filter=Q(status=Delivery.Status.LOADED)),
                quarantined=Sum("quarantined_count", filter=Q(status=Delivery.Status.LOADED)),
                backlog=Sum("body_bytes", filter=Q(status__in=waiting)),
                oldest=Min("received_at", filter=Q(status__in=waiting)),
                errors=Count("id", filter=~Q(error="") & ~Q(status=Delivery.Status.LOADED)),
                failed=Count("id", filter=Q(status=Delivery.Status.FAILED)),
                last=Max("received_at"),
            )
            .order_by()
        )
        received = CounterMetricFamily(
            "shoal_pool_received_records", "Records Firehose delivered (acknowledged).", labels=["pool"]
        )
        received_bytes = CounterMetricFamily(
            "shoal_pool_received_bytes", "Request bytes Firehose delivered, as sent.", labels=["pool"]
        )
        loaded = CounterMetricFamily(
            "shoal_pool_loaded_records", "Records loaded into the pool's table.", labels=["pool"]
        )
        quarantined = CounterMetricFamily(
            "shoal_pool_quarantined_records",
            "Records set aside as not DynamoDB change records.",
            labels=["pool"],
        )
        backlog = GaugeMetricFamily(
            "shoal_pool_backlog_bytes", "Bytes landed and not yet loaded.", labels=["pool"]
        )
        oldest = GaugeMetricFamily(
            "shoal_pool_oldest_landed_age_seconds",
            "Age of the oldest delivery waiting to load (0 when none waits).",
            labels=["pool"],
        )
        errors = GaugeMetricFamily(
            "shoal_pool_load_errors",
            "Deliveries whose last load failed (retried, or failed for good).",
            labels=["pool"],
        )
        failed = GaugeMetricFamily(
            "shoal_pool_failed_deliveries",
            "Deliveries that failed every load attempt; re-queue them from the admin.",
            labels=["pool"],
        )
        now = timezone.now()
        seen = set()
        for row in rows:
            name = names.get(row["pool_id"])
            if name is None:
                continue
            seen.add(name)
            earlier_records, earlier_bytes, earlier_loaded = pruned[row["pool_id"]]
            received.add_metric([name], (row["records"] or 0) + earlier_records)
            received_bytes.add_metric([name], (row["bytes"] or 0) + earlier_bytes)
            loaded.add_metric([name], (row["loaded"] or 0) + earlier_loaded)
            quarantined.add_metric([name], row["quarantined"] or 0)
            backlog.add_metric([name], row["backlog"] or 0)
            age = (now - row["oldest"]).total_seconds() if row["oldest"] else 0.0
            oldest.add_metric([name], max(age, 0.0))
            errors.add_metric([name], row["errors"])
            failed.add_metric([name], row["failed"])
        for pk, name in names.items():  # pools without deliveries (yet, or left after pruning)
            if name in seen:
                continue
            earlier_records, earlier_bytes, earlier_loaded = pruned[pk]
            received.add_metric([name], earlier_records)
            received_bytes.add_metric([name], earlier_bytes)
            loaded.add_metric([name], earlier_loaded)
            for family in (quarantined, backlog, oldest, errors, failed):
                family.add_metric([name], 0)
        yield from (received, received_bytes, loaded, quarantined, backlog, oldest, errors, failed)

    def _views(self) -> Iterator:
        failing = GaugeMetricFamily(
            "shoal_view_errors",
            "1 when a Materialized View failed, or its backfill did.",
            labels=["view"],
        )
        failed_backfills = set(
            Backfill.objects.filter(status=Backfill.Status.FAILED).values_list("mv_id", flat=True)
        )
        for pk, name, status in MaterializedView.objects.values_list("pk", "name", "status"):
            failing.add_metric(
                [name], int(status == MaterializedView.Status.FAILED or pk in failed_backfills)
            )
        yield failing

    def _ack(self) -> Iterator:
        try:
            raw = _redis().hgetall(ACK_KEY)
        except Exception as exc:  # Redis down: the histogram is missing from this scrape
            log.debug("ack metrics unavailable: %s", exc)
            return
        counts: dict[str, dict[str, int]] = {}
        sums: dict[str, float] = {}
        for key, value in raw.items():
            code, _, field = key.decode().partition("|")
            if field == "sum":
                sums[code] = float(value)
            else:
                counts.setdefault(code, {})[field] = int(value)
        family = HistogramMetricFamily(
            "shoal_ingest_ack_seconds",
            "Time from a Firehose request reaching Shoal to its answer, by HTTP status.",
            labels=["code"],
        )
        for code in sorted(counts):
            cumulative, buckets = 0, []
            for bound in ACK_BUCKETS:
                cumulative += counts[code].get(_le(bound), 0)
                buckets.append((_le(bound), cumulative))
            family.add_metric([code], buckets, sums.get(code, 0.0))
        yield family

    def _health(self) -> Iterator:
        up = GaugeMetricFamily("shoal_up", "1 when the dependency is ready (see /readyz).", labels=["check"])
        for check in health.readiness():
            up.add_metric([check.name], int(check.ok))
        yield up
        try:
            free = journal.free_bytes()
        except OSError:
            return
        yield GaugeMetricFamily("shoal_disk_free_bytes", "Free bytes in the data folder.", value=free)


def render() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ShoalCollector())
    return generate_latest(registry)
