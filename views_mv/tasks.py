"""Warehouse tasks of Materialized Views (queue `warehouse`). They take ids and can run twice."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from console import celery, json_paths, sql_guard, user_queries
from console.celery import shared_task
from console.warehouse import WarehouseError, get_warehouse, loggable
from console.warehouse.base import quote_string
from pools import loader
from pools import sources as source_types
from pools import tasks as pool_tasks
from pools.aws.clients import connect
from pools.gate import gate
from pools.models import DataPool, Delivery
from views_mv import apply, ddl, replica, schema, transform, typecheck
from views_mv.models import Backfill, MaterializedView, ReplicaCheck, ViewRun

log = logging.getLogger(__name__)

STALE_BACKFILL = timedelta(seconds=60)


@shared_task(bind=True)
def warehouse_inspect_sql(self, sql: str, sample_rows: int = 10, user: str = "") -> dict:
    """What a view's SELECT reads and returns: source tables, typed columns and a few rows (a
    view's Test). A user's query: it runs on the users' pool (console/user_queries.py), as `user`."""
    return user_queries.hand_off(self, _inspect_sql, sql, sample_rows, user=user or "system:view-test")


def _inspect_sql(sql: str, sample_rows: int) -> dict:
    warehouse = get_warehouse()
    try:
        sql = sql_guard.checked_select(warehouse, sql)
        sources = schema.source_tables(warehouse, sql)
        # A pool that has received nothing yet may not have its table: create it to describe it.
        for pool in DataPool.objects.filter(name__in=[s.split(".")[-1] for s in sources]):
            loader.ensure_table(warehouse, pool)
        # What the view will run: paths that name DynamoDB attributes read as the attributes
        # (console.json_paths); the rewritten text goes through the guard again.
        effective = sql_guard.checked_select(warehouse, json_paths.effective_sql(warehouse, sql))
        probe = sql_guard.checked_select(warehouse, json_paths.typed_leaves(effective))
        columns = schema.declared_types(warehouse, effective, probe)
        typed = schema.concrete_types(warehouse, effective, columns)
        rows = schema.sample(warehouse, effective, sample_rows)
        formatted = schema.formatted(warehouse, effective)
        table_name = schema.dynamodb_table(warehouse, sources)
    except (schema.QueryError, WarehouseError) as exc:
        return {"error": str(exc)}
    return {
        "sources": sources,
        "columns": typed,
        "rows": rows.rows,
        "elapsed_ms": rows.elapsed_ms,
        "effective": effective,
        "formatted": formatted,
        "table_name": table_name,
    }


@shared_task
def warehouse_type_changes(sql: str, chosen: dict[str, list[str]]) -> dict:
    """Which sampled values a view's target would store differently with the chosen types."""
    warehouse = get_warehouse()
    try:
        checked = sql_guard.checked_select(warehouse, sql)
        return {"columns": schema.type_changes(warehouse, checked, {n: tuple(t) for n, t in chosen.items()})}
    except (schema.QueryError, WarehouseError) as exc:
        return {"error": str(exc)}


@shared_task
def warehouse_seen_attributes(pool_id: int) -> dict:
    """The key schema and attributes a DynamoDB pool's changes show (views_mv/transform.py)."""
    pool = DataPool.objects.get(pk=pool_id)
    warehouse = get_warehouse()
    try:
        loader.ensure_table(warehouse, pool)
        found = transform.seen(warehouse, pool.table)
    except WarehouseError as exc:
        return {"error": str(exc)}
    return {"keys": found.keys, "time_keys": sorted(found.time_keys), "attributes": found.attributes}


@shared_task
def warehouse_check_view_types(mv_ids: list[int] | None = None) -> dict[str, list]:
    """For each view (all when no ids), the target columns whose type is not the SELECT's declared
    one (views_mv/typecheck.py), saved on the view for its page and the admin."""
    views = MaterializedView.objects.select_related("target_pool").filter(
        status=MaterializedView.Status.ACTIVE
    )
    if mv_ids is not None:
        views = views.filter(pk__in=mv_ids)
    warehouse, found = get_warehouse(), {}
    for mv in views:
        try:
            select = sql_guard.checked_select(warehouse, mv.sql)
            probe = sql_guard.checked_select(warehouse, json_paths.typed_leaves(mv.sql))
            declared = schema.concrete_types(
                warehouse, select, schema.declared_types(warehouse, select, probe)
            )
        except (schema.QueryError, WarehouseError) as exc:
            log.warning("could not check the types of view %s: %s", mv.name, loggable(exc))
            continue
        target = mv.target_pool
        found[mv.name] = typecheck.narrowed(target.columns, declared, typecheck.key_columns(target))
        MaterializedView.objects.filter(pk=mv.pk).update(
            narrowed_types=found[mv.name], types_checked_at=timezone.now()
        )
    return found


@shared_task
def warehouse_check_types(types: list[str]) -> dict[str, str]:
    """type → the warehouse's error, for each type (already through the grammar) it does not know."""
    warehouse = get_warehouse()
    bad = {}
    for type_ in types:
        try:
            warehouse.query(
                f"SELECT toTypeName(defaultValueOfTypeName({quote_string(type_)}))", readonly=True
            )
        except WarehouseError as exc:
            bad[type_] = str(exc)
    return bad


@shared_task
def warehouse_create_mv(mv_id: int, backfill: bool) -> str:
    """Create the target table and attach the view; fix the backfill's boundary at that moment."""
    mv = MaterializedView.objects.select_related("source_pool", "target_pool").filter(pk=mv_id).first()
    if mv is None or mv.status == MaterializedView.Status.DELETING:
        return "gone"
    warehouse = get_warehouse()
    try:
        loader.ensure_table(warehouse, mv.target_pool)
        loader.ensure_table(warehouse, mv.source_pool)
        with gate(mv.source_pool_id).exclusive():
            # Deleting takes the same gate: a view deleted while this task waited is not created.
            current = MaterializedView.objects.filter(pk=mv_id).values_list("status", flat=True).first()
            if current in (None, MaterializedView.Status.DELETING):
                return "gone"
            # Checked again right before it runs: the stored SQL may have been changed since
            # the wizard checked it (the admin, the database).
            sql_guard.checked_select(warehouse, mv.sql)
            if current != MaterializedView.Status.ACTIVE:  # not when this task runs twice
                if backfill:
                    # Loads wait at the gate: every delivery is now either finished (the backfill
                    # copies it) or still to pass the gate, where the loader runs this view.
                    plan_backfill(mv, finished_rows(warehouse, mv.source_pool))
                MaterializedView.objects.filter(pk=mv_id).update(
                    status=MaterializedView.Status.ACTIVE, status_detail=""
                )
    except WarehouseError as exc:
        MaterializedView.objects.filter(pk=mv_id).update(
            status=MaterializedView.Status.FAILED, status_detail=str(exc)
        )
        return "failed"
    if backfill:
        warehouse_run_backfill.enqueue(mv_id)
    warehouse_check_view_types.enqueue([mv_id])
    return "active"


@shared_task
def warehouse_rebuild_mv(mv_id: int) -> str:
    """Recreate the target table with the columns its pool now lists (services.rebuild_mv) and copy
    every finished delivery of the source again, as a backfill. Loads wait at the source's gate
    meanwhile, so each delivery reaches the new table once: from the backfill or from its load."""
    mv = MaterializedView.objects.select_related("source_pool", "target_pool").filter(pk=mv_id).first()
    if mv is None or mv.status == MaterializedView.Status.DELETING:
        return "gone"
    warehouse = get_warehouse()
    try:
        sql_guard.checked_select(warehouse, mv.sql)
        with gate(mv.source_pool_id).exclusive():
            warehouse.execute(f"DROP TABLE IF EXISTS {mv.target_pool.table} SYNC")
            loader.forget_table(mv.target_pool_id)
            loader.ensure_table(warehouse, mv.target_pool)
            # Inserts noted for batches not yet finished went into the old table: redo them.
            ViewRun.objects.filter(mv=mv).delete()
            plan_backfill(mv, finished_rows(warehouse, mv.source_pool))
            MaterializedView.objects.filter(pk=mv_id).update(
                status=MaterializedView.Status.ACTIVE, status_detail="", backfill_requested=True
            )
    except WarehouseError as exc:
        MaterializedView.objects.filter(pk=mv_id).update(
            status=MaterializedView.Status.FAILED, status_detail=str(exc)
        )
        return "failed"
    warehouse_run_backfill.enqueue(mv_id)
    warehouse_check_view_types.enqueue([mv_id])
    return "rebuilding"


def finished_rows(warehouse, source: DataPool) -> list[list]:
    """[delivery id, rows, first ms, last ms] of the source's deliveries that are `loaded`.

    A delivery whose rows are in the pool but which is not finished (its loader died after the
    insert) is left out: it will be loaded again, and the view runs over it then.
    """
    finished = set(
        Delivery.objects.filter(pool=source, status=Delivery.Status.LOADED).values_list("id", flat=True)
    )
    return [row for row in warehouse.query(ddl.delivery_rows(source.name)).rows if int(row[0]) in finished]


def plan_backfill(mv: MaterializedView, delivery_rows: list[list]) -> Backfill:
    """Split the source's deliveries into chunks of about MV_BACKFILL_CHUNK_ROWS rows (a delivery is
    never split)."""
    limit = settings.MV_BACKFILL_CHUNK_ROWS
    chunks: list[list[int]] = []
    sizes: list[int] = []
    bounds: list[list[int]] = []
    for delivery_id, rows, first_ms, last_ms in delivery_rows:
        if not chunks or sizes[-1] + int(rows) > limit:
            chunks.append([])
            sizes.append(0)
            bounds.append([int(first_ms), int(last_ms)])
        chunks[-1].append(int(delivery_id))
        sizes[-1] += int(rows)
        bounds[-1] = [min(bounds[-1][0], int(first_ms)), max(bounds[-1][1], int(last_ms))]
    backfill, _ = Backfill.objects.update_or_create(
        mv=mv,
        defaults={
            "chunks": chunks,
            "chunk_rows": sizes,
            "chunk_bounds": bounds,
            "rows_total": sum(sizes),
            "chunks_done": 0,
            "rows_done": 0,
            "status": Backfill.Status.PENDING,
            "error": "",
        },
    )
    return backfill


@shared_task
def warehouse_run_backfill(mv_id: int) -> str:
    """Copy the planned chunks, resuming after the last finished one.

    Each chunk's insert carries a deduplication token of its own, so a chunk repeated after a
    crash (inserted, but not yet counted) writes nothing the second time.
    """
    now = timezone.now()
    claimed = (
        Backfill.objects.filter(mv_id=mv_id)
        .filter(
            Q(status=Backfill.Status.PENDING)
            | Q(status=Backfill.Status.RUNNING, heartbeat_at__lt=now - STALE_BACKFILL)
            | Q(status=Backfill.Status.FAILED)
        )
        .update(status=Backfill.Status.RUNNING, heartbeat_at=now)
    )
    if not claimed:
        return "not claimed"
    Backfill.objects.filter(mv_id=mv_id, started_at__isnull=True).update(started_at=now)
    mv = MaterializedView.objects.select_related("source_pool", "target_pool").get(pk=mv_id)
    backfill = mv.backfill
    warehouse = get_warehouse()
    try:
        select = sql_guard.checked_select(warehouse, mv.sql)
    except WarehouseError as exc:
        Backfill.objects.filter(pk=backfill.pk).update(status=Backfill.Status.FAILED, error=str(exc))
        return "failed"
    for index in range(backfill.chunks_done, len(backfill.chunks)):
        chunk_token = f"mv-{mv.pk}-backfill-{index}"
        part = apply.Slice(
            sorted(int(i) for i in backfill.chunks[index]),
            backfill.chunk_bounds[index] if index < len(backfill.chunk_bounds) else None,
        )
        try:
            # Records the view cannot transform are set aside as ViewFailures; the rest is copied.
            apply.run_view(warehouse, mv, part, chunk_token, select=select)
        except Exception as exc:  # a fault of the moment: the sweep resumes from this chunk
            Backfill.objects.filter(pk=backfill.pk).update(status=Backfill.Status.PENDING, error=str(exc))
            log.warning(
                "backfill of %s stopped at chunk %d, to be resumed: %s", mv.name, index, loggable(exc)
            )
            return "pending"
        with transaction.atomic():
            Backfill.objects.filter(pk=backfill.pk, chunks_done=index).update(
                chunks_done=index + 1,
                rows_done=F("rows_done") + backfill.chunk_rows[index],
                heartbeat_at=timezone.now(),
            )
            apply.finished(chunk_token)
    Backfill.objects.filter(pk=backfill.pk).update(
        status=Backfill.Status.DONE, finished_at=timezone.now(), error=""
    )
    return "done"


@shared_task
def warehouse_retry_view_failures(mv_id: int) -> dict:
    """Run a view again over exactly the records it failed on (after it was fixed)."""
    repaired, still = apply.retry_failures(get_warehouse(), mv_id)
    return {"repaired": repaired, "still_failing": still}


def detach_triggers(warehouse) -> int:
    """Drop the ClickHouse materialized views that older Shoal versions attached to DynamoDB
    pools: their views now run in the loader (views_mv/apply.py), and a trigger left in place
    would copy each delivery a second time. Run when a warehouse worker starts, before it loads."""
    views = MaterializedView.objects.filter(source_pool__kind__in=source_types.kinds())
    for mv in views:
        warehouse.execute(ddl.drop_view(mv))
    return len(views)


@shared_task
def warehouse_drop_mv(mv_id: int, delete_target: bool) -> None:
    mv = MaterializedView.objects.select_related("target_pool").filter(pk=mv_id).first()
    if mv is None:
        return
    with gate(mv.source_pool_id).exclusive():  # not while the view is being created
        get_warehouse().execute(ddl.drop_view(mv))
    target = mv.target_pool
    mv.delete()
    if delete_target:
        pool_tasks.start_deleting(target)


@shared_task
def warehouse_sweep_backfills() -> list[int]:
    """Periodic (beat): resume backfills whose worker stopped."""
    stale = timezone.now() - STALE_BACKFILL
    ids = list(
        Backfill.objects.filter(
            Q(status=Backfill.Status.PENDING) | Q(status=Backfill.Status.RUNNING, heartbeat_at__lt=stale)
        ).values_list("mv_id", flat=True)
    )
    for mv_id in ids:
        warehouse_run_backfill.enqueue(mv_id)
    return ids


def start_replica_check(check_id: int) -> None:
    """Scan the table on the `default` queue (AWS credentials), then compare in the warehouse,
    once the check's row is committed; a broker that refuses it fails the check (shown on the page)."""
    celery.enqueue_on_commit(
        replica_scan.s(check_id) | warehouse_replica_compare.s(check_id),
        refused=lambda exc: _replica_failed(
            check_id, RuntimeError("could not queue the check: Redis is not reachable")
        ),
    )


@shared_task
def replica_scan(check_id: int) -> dict | None:
    """Step 1 of a Replica check (`default` queue): the table's items, or None when AWS failed."""
    check = ReplicaCheck.objects.select_related("connection").get(pk=check_id)
    try:
        return replica.scan_table(connect(check.connection).client("dynamodb"), check.table_name)
    except Exception as exc:  # AWS errors are the result of the check, shown as such
        _replica_failed(check_id, exc)
        return None


@shared_task(bind=True)
def warehouse_replica_compare(self, scanned: dict | None, check_id: int) -> dict | None:
    """Step 2 of a Replica check (`warehouse` queue): compare the scan with the view's pool, on
    the users' pool (console/user_queries.py), so that it never holds a loading thread."""
    return user_queries.hand_off(self, _replica_compare, scanned, check_id, user="replica-check")


def _replica_compare(scanned: dict | None, check_id: int) -> dict | None:
    if scanned is None:
        return None
    check = ReplicaCheck.objects.select_related("mv__target_pool").get(pk=check_id)
    try:
        report = replica.compare_with_pool(get_warehouse(), check.mv.target_pool.name, scanned).as_dict()
    except Exception as exc:  # warehouse errors are the result of the check, shown as such
        return _replica_failed(check_id, exc)
    ReplicaCheck.objects.filter(pk=check_id).update(
        status=ReplicaCheck.Status.DONE, report=report, finished_at=timezone.now()
    )
    return report


def _replica_failed(check_id: int, exc: Exception) -> dict:
    log.warning("replica check %s failed: %s", check_id, loggable(exc))
    report = {"error": str(exc)}
    ReplicaCheck.objects.filter(pk=check_id).update(
        status=ReplicaCheck.Status.FAILED, report=report, finished_at=timezone.now()
    )
    return report
