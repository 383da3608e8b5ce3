"""Running Materialized Views over the deliveries the loader (or a backfill) brings to a pool.

A view is not a trigger on the pool's INSERT: ClickHouse writes the pool's part before it runs
its views, so a view that fails on one record would fail the whole insert after the pool stored
it, and every view would lose the delivery's rows. Instead, once a delivery is in its pool, each
view of the pool runs as its own INSERT … SELECT over exactly that delivery's rows (ClickHouse's
`additional_table_filters`, as the backfill does). A view that fails on content is split —
deliveries, then event ids — until the failing records are alone; they are recorded against the
view (`ViewFailure`) and the rest goes through. Splits are deterministic and each insert carries
its own deduplication token, and each one that went through is noted until its batch is finished
(ClickHouse's token alone does not recognise a repeated INSERT … SELECT once the source's parts
were merged), so a repeated run writes nothing twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings as django_settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from console import sql_guard
from console.sql_guard import CheckedSelect
from console.warehouse import Warehouse, WarehouseError, loggable
from pools import faults
from pools.tables import INSERT_VERSION_COLUMN, table_ref
from views_mv import ddl
from views_mv.models import MaterializedView, ViewFailure, ViewRun

log = logging.getLogger(__name__)

# The event id of a failure that concerns a whole delivery (the view's SQL itself was refused);
# DynamoDB's eventIDs are hexadecimal, so it cannot be one.
WHOLE_DELIVERY = "*"

TIMEOUT_EXCEEDED, MEMORY_LIMIT_EXCEEDED = 159, 241
LIMIT_CODES = frozenset({TIMEOUT_EXCEEDED, MEMORY_LIMIT_EXCEEDED})


@dataclass(frozen=True)
class Slice:
    """Deliveries of a source (ids ascending) and their _received_at bounds in ms."""

    delivery_ids: list[int]
    bounds: list[int] | None


def views_of(pool_id: int) -> list[MaterializedView]:
    """Views that read the pool and are attached (read under the pool's gate)."""
    return list(
        MaterializedView.objects.filter(source_pool_id=pool_id, status=MaterializedView.Status.ACTIVE)
        .select_related("source_pool", "target_pool")
        .order_by("id")
    )


def run_views(
    warehouse: Warehouse, pool_id: int, delivery_ids: list[int], bounds: list[int], token: str
) -> int:
    """Run every attached view of a pool over some of its deliveries; returns failures recorded."""
    failed = 0
    ids = sorted(delivery_ids)
    for mv in views_of(pool_id):
        # The token names the deliveries too: a member of a batch run again alone (a held
        # delivery re-queued) is a different insert.
        root = f"mv-{mv.pk}/{token}/{ids[0]}-{ids[-1]}-{len(ids)}"
        failed += run_view(warehouse, mv, Slice(ids, bounds), root, scope=token)
    return failed


def run_view(
    warehouse: Warehouse,
    mv: MaterializedView,
    part: Slice,
    token: str,
    *,
    scope: str | None = None,
    select: CheckedSelect | None = None,
) -> int:
    """INSERT the view's rows for these deliveries into its target, isolating what it cannot
    transform; returns the number of failures recorded. Errors of the moment propagate.

    Each insert that goes through is noted (ViewRun, under `scope`, dropped when the scope is
    finished), so that running this again after a crash does not insert it twice."""
    scope = scope or token
    if select is None:
        try:
            # Checked again right before it runs: the stored SQL may have been changed since it
            # was checked (the admin, the database).
            select = sql_guard.checked_select(warehouse, mv.sql)
        except sql_guard.QueryRefused as exc:
            # Not one record's fault: the whole deliveries wait for the view's SQL to be fixed.
            return sum(
                _record(mv, delivery_id, WHOLE_DELIVERY, str(exc)) for delivery_id in part.delivery_ids
            )
    failed = 0
    pending: list[tuple[Slice, list[str] | None, str]] = [(part, None, token)]
    while pending:
        current, events, current_token = pending.pop()
        try:
            _insert_once(warehouse, mv, select, current, events, current_token, scope)
        except Exception as exc:
            if past_limit(exc):
                # Splitting would pay the limit again for every half: the slice's records are
                # the view's failures at once, and the pool's loading goes on.
                failed += _record_slice(mv, current, events, limit_message(exc))
                continue
            if not faults.is_content_error(exc):
                raise
            ids = current.delivery_ids
            if len(ids) > 1:
                middle = len(ids) // 2
                pending.append((Slice(ids[middle:], current.bounds), None, f"{current_token}/h1"))
                pending.append((Slice(ids[:middle], current.bounds), None, f"{current_token}/h0"))
                continue
            if events is None:  # one delivery: split it by event id
                events, current_token = _event_ids(warehouse, mv, ids[0]), f"{current_token}/e"
            if len(events) > 1:
                middle = len(events) // 2
                pending.append((current, events[middle:], f"{current_token}/h1"))
                pending.append((current, events[:middle], f"{current_token}/h0"))
                continue
            failed += _record(mv, ids[0], events[0] if events else "", str(exc))
    return failed


def _insert_once(
    warehouse: Warehouse,
    mv: MaterializedView,
    select: CheckedSelect,
    part: Slice,
    events: list[str] | None,
    token: str,
    scope: str,
) -> None:
    if ViewRun.objects.filter(mv=mv, token=token).exists():
        return  # inserted before the loader stopped
    _insert(warehouse, mv, select, part, events, token)
    ViewRun.objects.get_or_create(mv=mv, token=token, defaults={"scope": scope})


def past_limit(exc: BaseException) -> bool:
    return isinstance(exc, WarehouseError) and exc.code in LIMIT_CODES


def limit_message(exc: BaseException) -> str:
    which = (
        "VIEW_MAX_EXECUTION_SECONDS"
        if getattr(exc, "code", None) == TIMEOUT_EXCEEDED
        else "VIEW_MAX_MEMORY_BYTES"
    )
    return (
        f"The view's insert over this batch passed its limit ({which}={getattr(django_settings, which)}), "
        f"so the batch's records are listed here and the pool went on loading. Make the SELECT cheaper "
        f"for such records, or raise {which}, then retry them. ClickHouse said: {exc}"
    )


def _record_slice(mv: MaterializedView, part: Slice, events: list[str] | None, error: str) -> int:
    """Each delivery of the slice as one failure (its events when the slice named them): a
    retry runs exactly these again."""
    if events is not None and len(part.delivery_ids) == 1:
        return sum(_record(mv, part.delivery_ids[0], event_id, error) for event_id in events)
    return sum(_record(mv, delivery_id, WHOLE_DELIVERY, error) for delivery_id in part.delivery_ids)


def finished(scope: str) -> None:
    """Forget the inserts of a finished batch, chunk or repair."""
    ViewRun.objects.filter(scope=scope).delete()


def _insert(
    warehouse: Warehouse,
    mv: MaterializedView,
    select: CheckedSelect,
    part: Slice,
    events: list[str] | None,
    token: str,
) -> None:
    settings = {
        **ddl.chunk_filter(mv, part.delivery_ids, part.bounds, events),
        "insert_deduplication_token": token,
        # A view's insert cannot hold its pool's loading past these, whatever one record asks of it.
        "max_execution_time": django_settings.VIEW_MAX_EXECUTION_SECONDS,
        "timeout_overflow_mode": "throw",
        "max_memory_usage": django_settings.VIEW_MAX_MEMORY_BYTES,
    }
    if INSERT_VERSION_COLUMN in mv.target_pool.engine:
        # The target orders changes by arrival: read the source in arrival order.
        settings["max_threads"] = 1
    warehouse.execute(ddl.backfill_chunk(mv, select), settings=settings)


def _event_ids(warehouse: Warehouse, mv: MaterializedView, delivery_id: int) -> list[str]:
    rows = warehouse.query(
        f"SELECT DISTINCT event_id FROM {table_ref(mv.source_pool.name)} "
        f"WHERE _delivery_id = {int(delivery_id)} ORDER BY event_id"
    ).rows
    return [row[0] for row in rows]


def _record(mv: MaterializedView, delivery_id: int, event_id: str, error: str) -> int:
    log.warning("view %s cannot transform %s/%s: %s", mv.name, delivery_id, event_id, loggable(error))
    _, created = ViewFailure.objects.get_or_create(
        mv=mv, delivery_id=delivery_id, event_id=event_id[:255], defaults={"error": error}
    )
    return int(created)


def retry_failures(warehouse: Warehouse, mv_id: int) -> tuple[int, int]:
    """Run the view again over exactly the records it failed on; returns (repaired, still failing).

    Each attempt of a failure has its own token: a repair repeated after a crash (inserted, not
    yet marked) writes nothing twice, and a later attempt after a fix is a new insert.
    """
    mv = MaterializedView.objects.select_related("source_pool", "target_pool").get(pk=mv_id)
    failures = ViewFailure.objects.filter(mv=mv, resolved_at__isnull=True).select_related("delivery")
    try:
        select = sql_guard.checked_select(warehouse, mv.sql)
    except sql_guard.QueryRefused as exc:
        count = failures.update(error=str(exc), attempts=F("attempts") + 1, retried_at=timezone.now())
        return 0, count
    repaired = still = 0
    for failure in failures:
        received = int(failure.delivery.received_at.timestamp() * 1000)
        part = Slice([failure.delivery_id], [received, received])
        token = f"mv-{mv.pk}/repair/{failure.pk}/{failure.attempts}"
        events = None if failure.event_id == WHOLE_DELIVERY else [failure.event_id]
        try:
            _insert_once(warehouse, mv, select, part, events, token, token)
        except Exception as exc:
            if not faults.is_content_error(exc):
                raise
            ViewFailure.objects.filter(pk=failure.pk).update(
                error=str(exc), attempts=F("attempts") + 1, retried_at=timezone.now()
            )
            still += 1
            continue
        now = timezone.now()
        with transaction.atomic():
            ViewFailure.objects.filter(pk=failure.pk).update(resolved_at=now, retried_at=now)
            finished(token)
        repaired += 1
    return repaired, still
