"""Loaded deliveries' metadata is pruned after DELIVERY_RETENTION_DAYS; what a user still needs
stays, and counters over all deliveries never go down (pools/retention.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from pools import retention
from pools.models import DataPool, Delivery, LoadBatch, QuarantinedRecord
from tests.helpers.metrics import TOKEN, scrape

pytestmark = pytest.mark.django_db


def delivery(pool, request_id, *, age_days, status=Delivery.Status.LOADED, **fields):
    when = timezone.now() - timedelta(days=age_days)
    loaded = status == Delivery.Status.LOADED
    values = {"record_count": 10, "loaded_count": 10 if loaded else 0, "body_bytes": 1000, **fields}
    return Delivery.objects.create(
        pool=pool,
        request_id=request_id,
        status=status,
        received_at=when,
        loaded_at=when if loaded else None,
        **values,
    )


@pytest.fixture
def pool():
    return DataPool.objects.create(name="retained_orders")


def test_only_loaded_deliveries_past_retention_with_nothing_left_to_fix_are_pruned(pool, settings):
    settings.DELIVERY_RETENTION_DAYS = 30
    spent, current = LoadBatch.objects.create(pool=pool), LoadBatch.objects.create(pool=pool)
    LoadBatch.objects.filter(pk=spent.pk).update(created_at=timezone.now() - timedelta(days=31))
    old = delivery(pool, "old", age_days=31, batch=spent)
    recent = delivery(pool, "recent", age_days=29)
    waiting = delivery(pool, "waiting", age_days=40, status=Delivery.Status.LANDED)
    failed = delivery(pool, "failed", age_days=40, status=Delivery.Status.FAILED)
    quarantined = delivery(pool, "quarantined", age_days=40, quarantined_count=1, loaded_count=9)
    QuarantinedRecord.objects.create(pool=pool, delivery=quarantined, position=3, data="e30=", reason="x")

    assert retention.prune_deliveries(batch=2) == 1
    left = set(Delivery.objects.values_list("request_id", flat=True))
    assert left == {"recent", "waiting", "failed", "quarantined"}
    assert not Delivery.objects.filter(pk=old.pk).exists()
    assert list(LoadBatch.objects.all()) == [current]  # the batch of the pruned delivery went too
    pool.refresh_from_db()
    assert (pool.pruned_deliveries, pool.pruned_records, pool.pruned_bytes, pool.pruned_loaded) == (
        1,
        10,
        1000,
        10,
    )
    assert {recent.pk, waiting.pk, failed.pk, quarantined.pk} <= set(
        Delivery.objects.values_list("pk", flat=True)
    )


def test_zero_keeps_every_delivery(pool, settings):
    settings.DELIVERY_RETENTION_DAYS = 0
    delivery(pool, "ancient", age_days=3650)
    assert retention.prune_deliveries() == 0
    assert Delivery.objects.count() == 1


def test_metrics_counters_do_not_go_down_when_deliveries_are_pruned(pool, client, settings):
    settings.METRICS_TOKEN = TOKEN
    settings.DELIVERY_RETENTION_DAYS = 30
    for n in range(5):
        delivery(pool, f"r{n}", age_days=31 + n)
    delivery(pool, "today", age_days=0)
    before = scrape(client)
    assert retention.prune_deliveries(batch=2) == 5
    after = scrape(client)
    label = (("pool", pool.name),)
    for name in (
        "shoal_pool_received_records_total",
        "shoal_pool_received_bytes_total",
        "shoal_pool_loaded_records_total",
    ):
        assert after[(name, label)] == before[(name, label)] > 0, name

    # Once every delivery is pruned, the pool still reports what it received.
    settings.DELIVERY_RETENTION_DAYS = 1
    Delivery.objects.filter(request_id="today").update(loaded_at=timezone.now() - timedelta(days=2))
    assert retention.prune_deliveries() == 1
    assert scrape(client)[("shoal_pool_received_records_total", label)] == 60
