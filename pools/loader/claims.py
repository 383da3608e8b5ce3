"""Claiming load batches: which landed deliveries are loaded together, and giving them back.

A claim is a conditional UPDATE (landed → loading, with a token), so two loaders never take the same
delivery; the sweep returns claims whose loader stopped and lands journal files that lost their row.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from console import liveness
from console.warehouse import loggable
from pools import faults
from pools.ingest import envelope, journal
from pools.models import DataPool, Delivery, LoadBatch

log = logging.getLogger(__name__)


def _ready(pool_id: int):
    return Delivery.objects.filter(pool_id=pool_id, status=Delivery.Status.LANDED).filter(
        Q(retry_at__isnull=True) | Q(retry_at__lte=timezone.now())
    )


def claim(pool_id: int, limit: int | None = None) -> tuple[str, list[int]]:
    """Take the next load batch of a pool; returns the claim token and its deliveries' ids.

    A batch that was started and not finished is taken again as it was. Otherwise a new one is
    made of what has landed — one delivery when the pool is idle, many under load, up to
    `limit` deliveries, LOAD_BATCH_BYTES and LOAD_BATCH_RECORDS — and its members are saved
    before anything is inserted.
    """
    token = uuid.uuid4().hex
    batch_id = (
        _ready(pool_id).filter(batch__isnull=False).order_by("id").values_list("batch_id", flat=True).first()
    )
    if batch_id is None:
        batch_id = _new_batch(pool_id, limit or settings.LOAD_BATCH_DELIVERIES)
        if batch_id is None:
            return token, []
    # Members that are loaded are done; held ones (failed) wait for the admin to re-queue them.
    members = Delivery.objects.filter(
        batch_id=batch_id, status__in=[Delivery.Status.LANDED, Delivery.Status.LOADING]
    )
    claimed = members.filter(status=Delivery.Status.LANDED).update(
        status=Delivery.Status.LOADING,
        claim_token=token,
        claimed_at=timezone.now(),
        claimed_by=liveness.me(),
        attempts=F("attempts") + 1,
    )
    ids = list(members.filter(claim_token=token).order_by("id").values_list("id", flat=True))
    if claimed != members.count():  # part of the batch is still held by another loader
        Delivery.objects.filter(claim_token=token).update(
            status=Delivery.Status.LANDED, claim_token="", claimed_at=None
        )
        return token, []
    return token, ids


def _new_batch(pool_id: int, limit: int) -> int | None:
    candidates = _ready(pool_id).filter(batch__isnull=True).order_by("id")
    chosen, size, records = [], 0, 0
    for delivery_id, body_bytes, record_count in candidates.values_list("id", "body_bytes", "record_count")[
        :limit
    ]:
        if chosen and (
            size + body_bytes > settings.LOAD_BATCH_BYTES
            or records + record_count > settings.LOAD_BATCH_RECORDS
        ):
            break
        chosen.append(delivery_id)
        size, records = size + body_bytes, records + record_count
    if not chosen:
        return None
    with transaction.atomic():
        batch = LoadBatch.objects.create(pool_id=pool_id)
        taken = Delivery.objects.filter(id__in=chosen, batch__isnull=True).update(batch=batch)
    return batch.pk if taken else None


def release(delivery_id: int, token: str, error: str, *, hold: bool = False) -> None:
    """Give a claimed delivery back after a failed load, to be retried after a back-off.

    `hold` keeps it aside as `failed` (a count that does not add up: a defect to investigate,
    with its body kept); a fault of the moment is retried for as long as it takes.
    """
    delivery = Delivery.objects.filter(id=delivery_id, claim_token=token).first()
    if delivery is None:
        return
    log.warning(
        "load of delivery %s failed (attempt %s): %s", delivery_id, delivery.attempts, loggable(error)
    )
    Delivery.objects.filter(id=delivery_id, claim_token=token).update(
        status=Delivery.Status.FAILED if hold else Delivery.Status.LANDED,
        claim_token="",
        claimed_at=None,
        error=error[:4000],
        retry_at=timezone.now() + faults.retry_delay(delivery.attempts),
    )


def sweep(stale_after: float | None = None) -> list[int]:
    """Return the claims of loaders known dead, and stale ones, to `landed`; list the pools that
    have deliveries waiting."""
    stale_after = settings.LOAD_STALE_SECONDS if stale_after is None else stale_after
    cutoff = timezone.now() - timedelta(seconds=stale_after)
    release_dead()
    released = Delivery.objects.filter(status=Delivery.Status.LOADING, claimed_at__lt=cutoff).update(
        status=Delivery.Status.LANDED, claim_token="", claimed_at=None, claimed_by=""
    )
    if released:
        log.warning("sweep: %d deliveries were claimed by a loader that stopped; loading again", released)
    if journal.uses_files():
        recover_journal()
    return list(
        Delivery.objects.filter(status=Delivery.Status.LANDED)
        .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=timezone.now()))
        .values_list("pool_id", flat=True)
        .distinct()
    )


def release_dead() -> list[int]:
    """Return to `landed` the claims of loaders known to have stopped (console/liveness.py): a
    worker killed mid-load, seen dead as soon as its pid is gone or its heartbeat stops, rather
    than after LOAD_STALE_SECONDS. Returns the pools whose deliveries were given back."""
    holders = (
        Delivery.objects.filter(status=Delivery.Status.LOADING)
        .exclude(claimed_by="")
        .values_list("claimed_by", flat=True)
        .distinct()
    )
    dead = [name for name in holders if name != liveness.me() and liveness.dead(name)]
    if not dead:
        return []
    orphaned = Delivery.objects.filter(status=Delivery.Status.LOADING, claimed_by__in=dead)
    pools = list(orphaned.values_list("pool_id", flat=True).distinct())
    released = orphaned.update(status=Delivery.Status.LANDED, claim_token="", claimed_at=None, claimed_by="")
    log.warning(
        "%d deliveries were claimed by a loader that died (%s); loading again", released, ", ".join(dead)
    )
    return pools


def recover_journal(older_than: float = 30.0) -> int:
    """Give journal files without a delivery row their row back (see journal.recover_orphans)."""
    referenced = set(Delivery.objects.exclude(body_path="").values_list("body_path", flat=True))
    recovered = 0
    for public_id, path in journal.recover_orphans(referenced, older_than):
        relative = f"{public_id}/{path.name}"
        pool = DataPool.objects.filter(public_id=public_id).first()
        try:
            env = envelope.parse(path.read_bytes(), header_request_id="")
        except (envelope.EnvelopeError, OSError) as exc:
            log.error("journal file %s cannot be read (%s); moved aside", path, exc)
            path.rename(path.with_suffix(".unreadable"))
            continue
        if pool is None or Delivery.objects.filter(pool=pool, request_id=env.request_id).exists():
            journal.discard(relative)  # its pool is gone, or the batch is already stored
            continue
        received = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
        Delivery.objects.create(
            pool=pool,
            request_id=env.request_id,
            firehose_timestamp=env.timestamp,
            record_count=env.record_count,
            body_bytes=path.stat().st_size,
            body_path=relative,
            received_at=received,
            source_arn="shoal:journal-recovery",
        )
        recovered += 1
    if recovered:
        log.warning("recovered %d landed deliveries from the journal", recovered)
    return recovered


def requeue(delivery_ids: list[int]) -> int:
    """Put failed deliveries back in line (admin action)."""
    fresh = {"claim_token": "", "claimed_at": None, "attempts": 0, "error": "", "retry_at": None}
    return (
        Delivery.objects.filter(id__in=delivery_ids)
        .exclude(status=Delivery.Status.LOADED)
        .update(status=Delivery.Status.LANDED, **fresh)
    )
