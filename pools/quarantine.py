"""Replaying quarantined records: they go through the normal ingest path again as a new delivery,
so a record that is still not a change record comes back to quarantine with its reason."""

from __future__ import annotations

import hashlib

from django.utils import timezone

from pools.models import Delivery, QuarantinedRecord
from pools.reading import Batch, into_pool, land_batches


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
    deliveries: list[Delivery] = []

    def mark_replayed(batch: Batch, stored: bool) -> None:
        group = batch.position
        delivery = Delivery.objects.get(pool=group[0].pool, request_id=batch.request_id)
        QuarantinedRecord.objects.filter(id__in=[r.pk for r in group]).update(
            replayed_at=timezone.now(), replay_delivery=delivery
        )
        deliveries.append(delivery)

    for group in by_pool.values():
        ids = ",".join(str(r.pk) for r in group)
        request_id = "replay-" + hashlib.sha256(ids.encode()).hexdigest()[:32]
        batch = Batch(request_id, [r.data for r in group], position=group, encoded=True)
        # The one reading loop: the records land and are marked replayed in one transaction.
        land_batches([batch], land=into_pool(group[0].pool, "shoal:quarantine-replay"), save=mark_replayed)
    return deliveries
