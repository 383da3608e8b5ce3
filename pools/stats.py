"""Pool statistics read from the warehouse: size on disk for every pool, and for a pool fed by a
Materialized View (which receives no deliveries of its own) its records, its last change and its
status as well. Runs in the warehouse worker: by beat every minute, and for one pool whenever its
page sees that a load finished after the statistics were taken.
"""

from __future__ import annotations

from django.db.models import Max
from django.utils import timezone

from console.warehouse import Warehouse
from console.warehouse.base import quote_string
from pools.models import DataPool, Delivery
from pools.tables import table_ref


def refresh(warehouse: Warehouse, pool_ids: list[int] | None = None) -> int:
    """Store disk_bytes (and, for view-fed pools, record_count, last_delivery_at, status)."""
    pools = DataPool.objects.exclude(status=DataPool.Status.DELETING)
    if pool_ids is not None:
        pools = pools.filter(pk__in=pool_ids)
    pools = list(pools)
    if not pools:
        return 0
    names = ", ".join(quote_string(p.name) for p in pools)
    rows = warehouse.query(
        "SELECT table, sum(bytes_on_disk) FROM system.parts "
        f"WHERE active AND database = currentDatabase() AND table IN ({names}) GROUP BY table"
    ).rows
    sizes = {name: int(size) for name, size in rows}
    now = timezone.now()
    for pool in pools:
        fields: dict = {"disk_bytes": sizes.get(pool.name, 0), "stats_at": now}
        if pool.kind == DataPool.Kind.MATERIALIZED:
            fields.update(_view_fed(warehouse, pool, exists=pool.name in sizes))
        DataPool.objects.filter(pk=pool.pk).update(**fields)
    return len(pools)


def _view_fed(warehouse: Warehouse, pool: DataPool, *, exists: bool) -> dict:
    """A view-fed pool's records as queries see them (current state for a mutable pool), and as
    its last change the last delivery of a source that flowed through one of its views."""
    records = 0
    if exists:
        # The read-only settings apply FINAL, so a mutable pool counts its current records.
        counted = warehouse.query(f"SELECT count() FROM {table_ref(pool.name)}", readonly=True)
        records = int(counted.rows[0][0])
    last = DataPool.objects.filter(feeds__target_pool=pool).aggregate(last=Max("last_delivery_at"))["last"]
    fields: dict = {"record_count": records, "last_delivery_at": last if records else None}
    if records and pool.status in (DataPool.Status.CREATED, DataPool.Status.FAILED):
        fields.update(status=DataPool.Status.LIVE, status_detail="")
    return fields


def feeding_pool_ids(pool: DataPool) -> list[int]:
    """The pools whose deliveries change this pool: itself, or the sources of its views."""
    if pool.kind != DataPool.Kind.MATERIALIZED:
        return [pool.pk]
    return list(DataPool.objects.filter(feeds__target_pool=pool).values_list("pk", flat=True).distinct())


def loading(pool: DataPool) -> bool:
    """Whether deliveries that will change this pool are still landing or loading."""
    return Delivery.objects.filter(
        pool_id__in=feeding_pool_ids(pool), status__in=[Delivery.Status.LANDED, Delivery.Status.LOADING]
    ).exists()


def stale(pool: DataPool) -> bool:
    """Whether a load finished after the pool's statistics were taken."""
    deliveries = Delivery.objects.filter(pool_id__in=feeding_pool_ids(pool))
    last = deliveries.aggregate(last=Max("loaded_at"))["last"]
    return last is not None and (pool.stats_at is None or pool.stats_at < last)
