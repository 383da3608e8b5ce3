"""Celery tasks of Data Pools. Tasks take ids, never model objects, and are safe to run twice.

Tasks named warehouse_* run on the `warehouse` queue (see CELERY_TASK_ROUTES); the rest on `default`.
"""

from __future__ import annotations

import logging
import shutil

from django.core.exceptions import ValidationError

from console import sql_guard, user_queries
from console.celery import shared_task
from console.warehouse import WarehouseError, get_warehouse
from pools import loader, retention, stats, tables
from pools.ingest import journal
from pools.models import DataPool

log = logging.getLogger(__name__)


# Fire-and-forget: nobody waits for a load's result, so none is stored, and queueing one never
# touches the result backend (with Redis down, that cost the endpoint ~19 s per delivery).
@shared_task(acks_late=True, ignore_result=True)
def warehouse_load_pool(pool_id: int) -> dict:
    outcome = loader.load_pool(get_warehouse(), pool_id)
    if outcome.deliveries or outcome.failed:
        log.info(
            "pool %s: loaded %d deliveries, %d records (%d quarantined, %d failed)",
            pool_id,
            outcome.deliveries,
            outcome.records,
            outcome.quarantined,
            outcome.failed,
        )
    return outcome.__dict__


@shared_task
def warehouse_create_table(pool_id: int) -> None:
    pool = DataPool.objects.get(pk=pool_id)
    try:
        loader.ensure_table(get_warehouse(), pool)
    except WarehouseError as exc:
        DataPool.objects.filter(pk=pool_id).update(status=DataPool.Status.FAILED, status_detail=str(exc))
        raise


@shared_task
def warehouse_drop_table(pool_id: int, name: str) -> None:
    get_warehouse().execute(tables.drop_table(name))
    loader.forget_table(pool_id)


@shared_task(bind=True)
def warehouse_preview(self, pool_id: int, limit: int = 50, user: str = "") -> dict:
    """Preview Data: a user's query, run on the users' pool (console/user_queries.py)."""
    return user_queries.hand_off(self, _preview, pool_id, limit, user=user)


def _preview(pool_id: int, limit: int) -> dict:
    pool = DataPool.objects.get(pk=pool_id)
    warehouse = get_warehouse()
    try:
        loader.ensure_table(warehouse, pool)
        # final=1: a mutable pool shows its current state (deduplicated, deletes hidden).
        sql = tables.preview_select(pool, max(1, min(limit, 1000)))
        # Through the users' guard and read-only connection (final=1 there) like any user query:
        # a pool's columns come from a user's view.
        sql_guard.check(warehouse, sql)
        return warehouse.query(sql, readonly=True).as_dict()
    except WarehouseError as exc:
        return {"error": str(exc), "code": exc.code}


@shared_task
def warehouse_delete_pool(pool_id: int) -> None:
    """Drop a pool's table, then the pool with its deliveries, quarantine and journal files."""
    pool = DataPool.objects.filter(pk=pool_id, status=DataPool.Status.DELETING).first()
    if pool is None:
        return
    get_warehouse().execute(tables.drop_table(pool.name))
    loader.forget_table(pool_id)
    pool.delete()
    shutil.rmtree(journal.folder() / pool.public_id, ignore_errors=True)


def start_deleting(pool: DataPool) -> None:
    """Mark a pool deleting and queue its deletion; refused while a Materialized View uses it."""
    views = sorted({mv.name for mv in pool.feeds.all()} | {mv.name for mv in pool.fed_by.all()})
    if views:
        raise ValidationError(
            f"{pool.name} is used by the Materialized View{'s' if len(views) > 1 else ''} "
            f"{', '.join(views)}; delete {'them' if len(views) > 1 else 'it'} first."
        )
    DataPool.objects.filter(pk=pool.pk).update(status=DataPool.Status.DELETING)
    pool.status = DataPool.Status.DELETING
    warehouse_delete_pool.enqueue(pool.pk)  # not queued: beat's sweep picks deleting pools up again


@shared_task
def warehouse_pool_stats(pool_ids: list[int] | None = None) -> int:
    """Periodic (beat), and for one pool from its page: statistics from the warehouse (pools/stats.py)."""
    return stats.refresh(get_warehouse(), pool_ids)


@shared_task
def warehouse_active_parts() -> dict[str, int]:
    """Active parts of each table in the pool database: what merges keep small (each insert adds
    one; too many slow every read and, past ClickHouse's limit, refuse inserts)."""
    warehouse = get_warehouse()
    rows = warehouse.query(
        "SELECT table, count() FROM system.parts "
        f"WHERE active AND database = '{warehouse.database}' GROUP BY table"
    ).rows
    return {name: int(count) for name, count in rows}


@shared_task
def prune_deliveries() -> int:
    """Periodic (beat): forget loaded deliveries past DELIVERY_RETENTION_DAYS (pools/retention.py)."""
    return retention.prune_deliveries()


@shared_task
def sweep_deliveries() -> list[int]:
    """Periodic (beat): re-queue loads that were lost or whose worker died, and deletions."""
    pool_ids = loader.sweep()
    for pool_id in pool_ids:
        warehouse_load_pool.enqueue(pool_id)
    for pool_id in DataPool.objects.filter(status=DataPool.Status.DELETING).values_list("pk", flat=True):
        warehouse_delete_pool.enqueue(pool_id)
    return pool_ids
