"""Replaying quarantined records: they go through the normal ingest path again as a new delivery,
so a record that is still not a change record comes back to quarantine with its reason."""

from __future__ import annotations

import hashlib

from django.db import transaction
from django.utils import timezone

from pools.ingest.landing import land_records
from pools.models import Delivery, QuarantinedRecord


def replay(record_ids: list[int]) -> list[Delivery]:
    """Land the given quarantined records again, one delivery per pool; returns the deliveries."""
    quarantined = list(
        QuarantinedRecord.objects.filter(id__in=record_ids, replayed_at__isnull=True)
        .select_related("pool")
        .order_by("pool_id", "id")
    )
    by_pool: dict[int, list[QuarantinedRecord]] = {}
    for record in quarantined:
        by_pool.setdefault(record.pool_id, []).append(record)
    deliveries = []
    for group in by_pool.values():
        pool = group[0].pool
        ids = ",".join(str(r.pk) for r in group)
        request_id = "replay-" + hashlib.sha256(ids.encode()).hexdigest()[:32]
        with transaction.atomic():
            land_records(
                pool, request_id, [r.data for r in group], source_arn="shoal:quarantine-replay", encoded=True
            )
            delivery = Delivery.objects.get(pool=pool, request_id=request_id)
            QuarantinedRecord.objects.filter(id__in=[r.pk for r in group]).update(
                replayed_at=timezone.now(), replay_delivery=delivery
            )
        deliveries.append(delivery)
    return deliveries
