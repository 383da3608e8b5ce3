"""How long delivery metadata is kept: loaded deliveries are pruned after DELIVERY_RETENTION_DAYS.

A delivery row is what makes a Firehose retry of the same request id a no-op, so it is kept far
longer than Firehose retries (at most two hours) and than a paused snapshot's resume. Only
deliveries that are done are pruned: loaded, with nothing quarantined and no view failure left
to repair (those stay until a user deals with them). Their figures are added to the pool's
`pruned_*` totals in the same transaction, so that counters over all deliveries never go down.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Sum
from django.utils import timezone

from pools.models import DataPool, Delivery, LoadBatch

BATCH = 2000


def cutoff(now=None):
    return (now or timezone.now()) - timedelta(days=settings.DELIVERY_RETENTION_DAYS)


def prunable(now=None):
    """Deliveries past retention that hold nothing a user still needs."""
    return Delivery.objects.filter(
        status=Delivery.Status.LOADED,
        loaded_at__lt=cutoff(now),
        quarantined_count=0,
        view_failures__isnull=True,
    )


def prune_deliveries(now=None, batch: int = BATCH) -> int:
    """Delete prunable deliveries in batches, pool by pool; returns how many went."""
    if settings.DELIVERY_RETENTION_DAYS <= 0:  # 0 keeps every delivery
        return 0
    removed = 0
    while True:
        ids = list(prunable(now).order_by("id").values_list("id", flat=True)[:batch])
        if not ids:
            # Group-commit batches left without members (theirs were loaded, then pruned).
            LoadBatch.objects.filter(deliveries__isnull=True, created_at__lt=cutoff(now)).delete()
            return removed
        with transaction.atomic():
            doomed = Delivery.objects.filter(id__in=ids, status=Delivery.Status.LOADED)
            totals = doomed.values("pool_id").annotate(
                n=Count("id"),
                records=Sum("record_count"),
                bytes=Sum("body_bytes"),
                loaded=Sum("loaded_count"),
            )
            for row in totals.order_by():
                DataPool.objects.filter(pk=row["pool_id"]).update(
                    pruned_deliveries=F("pruned_deliveries") + row["n"],
                    pruned_records=F("pruned_records") + (row["records"] or 0),
                    pruned_bytes=F("pruned_bytes") + (row["bytes"] or 0),
                    pruned_loaded=F("pruned_loaded") + (row["loaded"] or 0),
                )
            removed += doomed.delete()[1].get("pools.Delivery", 0)
