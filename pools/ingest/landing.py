"""Durable landing: a delivery is stored (its body in the journal or the database, its row in
Django's database) before Firehose gets its 200, then a warehouse worker is asked to load it.

`land` is the one path into a pool: the HTTP endpoint stores each delivery with it, and Shoal's own
readers (the initial snapshot, the replays of failed deliveries and of quarantined records, the
pull reader) with `land_records` through the one reading loop (pools/reading.py); a batch stored
twice under the same request id is stored once. `backpressure` and `disk_short` say
when a pool or the disk cannot take more (the endpoint answers 503, the snapshot waits).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum

from console.warehouse_client import WarehouseUnavailable, worker_alive
from pools.ingest import envelope, journal, records
from pools.models import DataPool, Delivery
from pools.tasks import warehouse_load_pool

log = logging.getLogger(__name__)


def land(
    pool: DataPool,
    env: envelope.Envelope,
    raw: bytes,
    encoding: str,
    source_arn: str = "",
    *,
    data: bytes | None = None,
) -> bool:
    """Store a delivery durably; False when this request id was stored before (a retry).

    `raw` is the body as received; `data` the same decompressed (when already at hand).
    """
    gzipped = encoding.strip().lower() == "gzip"
    fields = {"body": raw, "content_encoding": "gzip" if gzipped else ""}
    if journal.uses_files():
        if data is None:
            data = envelope.decompress(raw, encoding, max_bytes=settings.INGEST_MAX_BODY_BYTES)
        fields = {"body_path": journal.write(pool.public_id, data)}
    try:
        with transaction.atomic():
            Delivery.objects.create(
                pool=pool,
                request_id=env.request_id,
                firehose_timestamp=env.timestamp,
                source_arn=source_arn[:500],
                record_count=env.record_count,
                body_bytes=len(raw),
                **fields,
            )
            # Fire-and-forget (no result is stored, the publish is not retried, the broker's socket
            # timeouts are short): if Redis cannot take it, an outage costs the 200 nothing but
            # the delay of beat's sweep, which loads the durable delivery.
            warehouse_load_pool.enqueue_on_commit(pool.pk)
    except IntegrityError:
        journal.discard(fields.get("body_path", ""))
        if Delivery.objects.filter(pool=pool, request_id=env.request_id).exists():
            return False
        raise
    except BaseException:
        journal.discard(fields.get("body_path", ""))
        raise
    return True


def land_records(
    pool: DataPool,
    request_id: str,
    batch: list,
    *,
    source_arn: str = "",
    encoded: bool = False,
    timestamp_ms: int | None = None,
) -> bool:
    """Store records Shoal read itself (a snapshot page, failed deliveries from S3, quarantined
    records) as one delivery, in the body Firehose would have sent (records.firehose_body; with
    `encoded`, the records are already base64 text); False when this request id was stored before.

    `timestamp_ms`, when given, is the body's timestamp and the delivery's Firehose timestamp.
    """
    body = records.firehose_body(request_id, batch, timestamp_ms=timestamp_ms, encoded=encoded)
    env = envelope.Envelope(request_id=request_id, timestamp=timestamp_ms, record_count=len(batch))
    return land(pool, env, body, "", source_arn, data=body)


def disk_short(needed: int) -> str:
    """Why the data folder cannot take `needed` more bytes ('' when it can): storing them would
    leave less than INGEST_MIN_FREE_BYTES free. Answering 503 before the disk fills leaves the data
    with Firehose, and keeps room for the warehouse, which loads and then frees the journal."""
    minimum = settings.INGEST_MIN_FREE_BYTES
    if not minimum or not (
        journal.uses_files() or settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")
    ):
        return ""
    free = journal.free_bytes()
    if free - needed < minimum:
        return (
            f"Shoal's disk is almost full ({free // 2**20} MiB free, INGEST_MIN_FREE_BYTES is "
            f"{minimum // 2**20} MiB); please retry later"
        )
    return ""


_worker_seen = {"at": 0.0, "alive": False}


@dataclass(frozen=True)
class Pressure:
    """Why a pool cannot take more now, and whether waiting a moment can change that."""

    reason: str = ""
    passing: bool = False  # the soft limit: the loader is working and will make room shortly

    def __bool__(self) -> bool:
        return bool(self.reason)


def pressure(pool: DataPool) -> Pressure:
    """Too much is waiting for the warehouse (an empty Pressure when the pool can take more).

    Answering 503 leaves the data with Firehose (and Kinesis), which retries with back-off; the
    soft limit keeps freshness while a worker is loading, the hard one protects the disk when none
    is. Deliveries already landed are never refused (a retry of one is answered 200 further on).
    The batch being loaded counts toward the hard limit only: with group commit it may be as large
    as the soft limit, and counting it would refuse every request for as long as it loads.
    """
    soft, hard = settings.INGEST_BACKLOG_SOFT_BYTES, settings.INGEST_BACKLOG_HARD_BYTES
    if not soft and not hard:
        return Pressure()
    totals = Delivery.objects.filter(
        pool=pool, status__in=[Delivery.Status.LANDED, Delivery.Status.LOADING]
    ).aggregate(all=Sum("body_bytes"), landed=Sum("body_bytes", filter=Q(status=Delivery.Status.LANDED)))
    behind, waiting = totals["all"] or 0, totals["landed"] or 0
    if hard and behind > hard:
        return Pressure(f"Shoal is {behind // 2**20} MiB behind on this pool; please retry later")
    if soft and waiting > soft and _worker_alive():
        return Pressure(
            f"Shoal is loading this pool ({waiting // 2**20} MiB waiting); please retry shortly", True
        )
    return Pressure()


def backpressure(pool: DataPool) -> str:
    return pressure(pool).reason


def _worker_alive() -> bool:
    """Whether a warehouse worker is running, asked of Redis at most once a second."""
    now = time.monotonic()
    if now - _worker_seen["at"] > 1.0:
        try:
            alive = worker_alive()
        except WarehouseUnavailable:
            alive = False
        _worker_seen.update(at=now, alive=alive)
    return _worker_seen["alive"]
