"""Prometheus metrics for /metrics, derived at scrape time from Django's database and Redis.

Nothing is counted in a process's memory, so the figures are the same whichever web process
answers the scrape, survive restarts, and need no multi-process collector files: pool figures
come from the deliveries table, the ack latency histogram from a Redis hash that every web
process adds its observations to in the background (never on the request's path).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import redis
from django.conf import settings
from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from console import admission
from console.access import health
from console.ack_latency import ACK_BUCKETS, ACK_KEY, le
from pools.aws.models import Pipeline, ShardCheckpoint
from pools.ingest import journal
from pools.models import DataPool, Delivery
from pools.pull.runner import reader_running
from views_mv.models import Backfill, MaterializedView

log = logging.getLogger(__name__)


def _redis():
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)


# --- the scrape ------------------------------------------------------------------------------------


# Each pool's figures: (key, kind, metric, help).
POOL_FIGURES = (
    (
        "received",
        CounterMetricFamily,
        "shoal_pool_received_records",
        "Records Firehose delivered (acknowledged).",
    ),
    (
        "received_bytes",
        CounterMetricFamily,
        "shoal_pool_received_bytes",
        "Request bytes Firehose delivered, as sent.",
    ),
    ("loaded", CounterMetricFamily, "shoal_pool_loaded_records", "Records loaded into the pool's table."),
    (
        "quarantined",
        CounterMetricFamily,
        "shoal_pool_quarantined_records",
        "Records set aside as not DynamoDB change records.",
    ),
    ("backlog", GaugeMetricFamily, "shoal_pool_backlog_bytes", "Bytes landed and not yet loaded."),
    (
        "oldest",
        GaugeMetricFamily,
        "shoal_pool_oldest_landed_age_seconds",
        "Age of the oldest delivery waiting to load (0 when none waits).",
    ),
    (
        "errors",
        GaugeMetricFamily,
        "shoal_pool_load_errors",
        "Deliveries whose last load failed (retried, or failed for good).",
    ),
    (
        "failed",
        GaugeMetricFamily,
        "shoal_pool_failed_deliveries",
        "Deliveries that failed every load attempt; re-queue them from the admin.",
    ),
)


QUERY_FIGURES = (
    ("running", GaugeMetricFamily, "shoal_queries_running", "Users' queries running in the warehouse."),
    ("queued", GaugeMetricFamily, "shoal_queries_queued", "Users' queries waiting for a thread."),
    ("admitted_total", CounterMetricFamily, "shoal_queries_admitted", "Queries admitted."),
    (
        "refused_total",
        CounterMetricFamily,
        "shoal_queries_refused",
        "Queries refused (429): their identity had its share running and queued.",
    ),
    (
        "busy_total",
        CounterMetricFamily,
        "shoal_queries_busy",
        "Queries refused (429): every query slot of the web process was taken (WEB_QUERY_SLOTS).",
    ),
)


def _delivery_figures():
    """Each pool's deliveries summed up, in one query."""
    waiting = [Delivery.Status.LANDED, Delivery.Status.LOADING]
    return (
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
        )
        .order_by()
    )


def _pool_values(row: dict | None, pruned: tuple[int, int, int], now) -> dict:
    """A pool's figures from its deliveries' sums (None: it has none) and what pruning counted."""
    earlier_records, earlier_bytes, earlier_loaded = pruned
    row = row or {}
    age = (now - row["oldest"]).total_seconds() if row.get("oldest") else 0.0
    return {
        "received": (row.get("records") or 0) + earlier_records,
        "received_bytes": (row.get("bytes") or 0) + earlier_bytes,
        "loaded": (row.get("loaded") or 0) + earlier_loaded,
        "quarantined": row.get("quarantined") or 0,
        "backlog": row.get("backlog") or 0,
        "oldest": max(age, 0.0),
        "errors": row.get("errors") or 0,
        "failed": row.get("failed") or 0,
    }


class ShoalCollector:
    """Reads the figures when Prometheus scrapes."""

    def collect(self) -> Iterator:
        yield from self._pools()
        yield from self._views()
        yield from self._ack()
        yield from self._health()
        yield from self._queries()
        yield from self._pulls()

    def _pools(self) -> Iterator:
        families = {key: kind(name, text, labels=["pool"]) for key, kind, name, text in POOL_FIGURES}
        names = dict(DataPool.objects.values_list("pk", "name"))
        # What pruned deliveries counted (pools/retention.py): counters never go down.
        pruned = {
            pk: (records, size, loaded_)
            for pk, records, size, loaded_ in DataPool.objects.values_list(
                "pk", "pruned_records", "pruned_bytes", "pruned_loaded"
            )
        }
        by_pool = {row["pool_id"]: row for row in _delivery_figures()}
        now = timezone.now()
        for pk, name in names.items():  # pools without deliveries too (yet, or left after pruning)
            for key, value in _pool_values(by_pool.get(pk), pruned[pk], now).items():
                families[key].add_metric([name], value)
        yield from families.values()

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
                cumulative += counts[code].get(le(bound), 0)
                buckets.append((le(bound), cumulative))
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

    def _queries(self) -> Iterator:
        """Users' queries by identity kind (user, key, system): what runs and waits in the
        warehouse worker's fair pool, and the admission decisions (console/admission.py)."""
        figures = admission.figures()
        for suffix, kind, name, text in QUERY_FIGURES:
            family = kind(name, text, labels=["kind"])
            for who in ("user", "key", "system"):
                family.add_metric([who], figures.get(f"{who}:{suffix}", 0))
            yield family

    def _pulls(self) -> Iterator:
        """The pipelines that pull (pools/pull/): how far behind their reader is, what it read."""
        lag = GaugeMetricFamily(
            "shoal_pull_lag_seconds",
            "How far the pull reader is behind the newest record of a pool's stream (largest open shard).",
            labels=["pool"],
        )
        read = CounterMetricFamily(
            "shoal_pull_records", "Records the pull reader landed from a pool's stream.", labels=["pool"]
        )
        pulling = Pipeline.objects.filter(status=Pipeline.Status.ACTIVE).exclude(
            delivery_mode=Pipeline.Mode.FIREHOSE
        )
        figures = ShardCheckpoint.objects.filter(pipeline__in=pulling).values("pipeline__pool__name")
        for row in figures.annotate(
            lag=Max("lag_ms", filter=Q(finished=False)), records=Sum("records")
        ).order_by():
            name = row["pipeline__pool__name"]
            lag.add_metric([name], (row["lag"] or 0) / 1000)
            read.add_metric([name], row["records"] or 0)
        yield lag
        yield read
        if pulling.exists():
            yield GaugeMetricFamily(
                "shoal_pull_reader_up",
                "1 when the pull reader process is running.",
                value=int(reader_running()),
            )


def render() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ShoalCollector())
    return generate_latest(registry)
