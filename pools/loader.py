"""Moving landed deliveries into the warehouse. Runs only in `warehouse` workers.

Every step can be repeated after a crash: a delivery is claimed with a conditional UPDATE, its
insert carries a deduplication token derived from the delivery (so a second insert of it writes
nothing), quarantine rows are unique per (delivery, position), and the counters move only when
the delivery itself moves to `loaded`.

What a 200 promised is checked against the data: after the insert, the rows of the delivery in
the pool are counted; with the records quarantined they must make up the delivery's record count.
A record the warehouse refuses (a content error, see pools/faults.py) is found by splitting the
delivery in halves, deterministically, so that a repeated load makes the same inserts with the
same tokens; it is quarantined with ClickHouse's reason and the rest is loaded. Any other fault
is retried with back-off for as long as it takes.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from console.warehouse import Warehouse, WarehouseError
from pools import faults, landing, tables
from pools.envelope import decompress
from pools.gate import gate
from pools.models import DataPool, Delivery, QuarantinedRecord

log = logging.getLogger(__name__)

_known_tables: set[tuple[int, str]] = set()


class CountMismatch(Exception):
    """The pool and the quarantine do not account for every record of a delivery: a defect of
    Shoal (the envelope check and the warehouse disagree), kept for investigation."""


@dataclass
class LoadOutcome:
    deliveries: int = 0
    records: int = 0
    quarantined: int = 0
    failed: int = 0


def ensure_table(warehouse: Warehouse, pool: DataPool) -> None:
    key = (pool.pk, pool.name)
    if key not in _known_tables:
        warehouse.execute(tables.create_table(pool))
        _known_tables.add(key)


def forget_table(pool_id: int) -> None:
    for key in [k for k in _known_tables if k[0] == pool_id]:
        _known_tables.discard(key)


def claim(pool_id: int, limit: int) -> tuple[str, list[int]]:
    """Take up to `limit` landed deliveries of a pool; returns the claim token and their ids."""
    token = uuid.uuid4().hex
    candidates = list(
        Delivery.objects.filter(pool_id=pool_id, status=Delivery.Status.LANDED)
        .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=timezone.now()))
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    if not candidates:
        return token, []
    Delivery.objects.filter(id__in=candidates, status=Delivery.Status.LANDED).update(
        status=Delivery.Status.LOADING,
        claim_token=token,
        claimed_at=timezone.now(),
        attempts=F("attempts") + 1,
    )
    claimed = list(
        Delivery.objects.filter(claim_token=token, status=Delivery.Status.LOADING)
        .order_by("id")
        .values_list("id", flat=True)
    )
    return token, claimed


def load_pool(warehouse: Warehouse, pool_id: int, *, batch: int | None = None) -> LoadOutcome:
    """Load every landed delivery of a pool, a batch at a time, until none is left.

    After a failure the loop stops: what failed waits for the sweep, which comes back later,
    instead of being retried at once against a warehouse that just refused it.
    """
    outcome = LoadOutcome()
    batch = batch or settings.LOAD_BATCH_DELIVERIES
    while True:
        token, ids = claim(pool_id, batch)
        if not ids:
            return outcome
        for delivery_id in ids:
            try:
                loaded, quarantined = load_delivery(warehouse, delivery_id, token)
            except Exception as exc:  # WarehouseError, or anything else: never leave it claimed
                if not isinstance(exc, WarehouseError | CountMismatch):
                    log.exception("load of delivery %s failed", delivery_id)
                release(delivery_id, token, str(exc), hold=isinstance(exc, CountMismatch))
                outcome.failed += 1
                continue
            outcome.deliveries += 1
            outcome.records += loaded
            outcome.quarantined += quarantined
        if outcome.failed:
            return outcome


def load_delivery(warehouse: Warehouse, delivery_id: int, token: str) -> tuple[int, int]:
    """Insert one claimed delivery; returns (records loaded, records quarantined)."""
    delivery = Delivery.objects.select_related("pool").get(id=delivery_id)
    pool = delivery.pool
    ensure_table(warehouse, pool)
    path, spooled = _spool(delivery)
    if not path.exists():
        return _journal_file_gone(warehouse, delivery, token)
    received_ms = int(delivery.received_at.timestamp() * 1000)
    try:
        # Views are attached under this gate (views_mv/tasks.py): a delivery is either finished
        # before a view's backfill is planned, or runs through that view here.
        with gate(pool.pk).shared():
            loaded, quarantined, note = _load_and_account(warehouse, delivery, path, received_ms)
            from views_mv.apply import run_views

            run_views(warehouse, pool.pk, [delivery.pk], [received_ms, received_ms], delivery.dedup_token)
            finish(delivery, token, loaded, quarantined, note=note)
    finally:
        if spooled:
            path.unlink(missing_ok=True)
    return loaded, quarantined


def _load_and_account(
    warehouse: Warehouse, delivery: Delivery, path: Path, received_ms: int
) -> tuple[int, int, str]:
    """Insert the delivery, then count what the pool holds of it and quarantine the rest;
    returns (stored, quarantined, a note for the delivery)."""
    pool = delivery.pool
    refused, view_error = _insert_isolating(warehouse, delivery, path, received_ms)
    stored = _stored(warehouse, pool, {delivery.pk: received_ms}).get(delivery.pk, 0)
    rejected: list[list] = []
    if stored + len(refused) < delivery.record_count:
        # Records that are not change records were left out by the insert: which, and why.
        rejected = warehouse.query_file(tables.rejected_select(), path).rows
    quarantine = [*rejected, *refused]
    if stored + len(quarantine) != delivery.record_count:
        raise CountMismatch(
            f"{delivery.record_count} records were acknowledged, but {stored} are in the pool and "
            f"{len(quarantine)} in quarantine; the body is kept for investigation"
        )
    if quarantine:
        QuarantinedRecord.objects.bulk_create(
            [
                QuarantinedRecord(
                    pool=pool, delivery=delivery, position=position, data=data, reason=reason[:200]
                )
                for position, data, reason in quarantine
            ],
            ignore_conflicts=True,
        )
    return stored, len(quarantine), view_error


def _insert_isolating(
    warehouse: Warehouse, delivery: Delivery, path: Path, received_ms: int
) -> tuple[list[list], str]:
    """Insert a delivery's records, leaving out those the warehouse refuses.

    Returns the refused records as [position, data, reason] and, when a Materialized View refused
    the records after the pool had stored them, that view's error (the pool's rows are then
    complete and are not inserted again).
    """
    pool = delivery.pool
    refused: list[list] = []
    pending = [(1, delivery.record_count)]
    while pending:
        first, last = pending.pop()
        whole = (first, last) == (1, delivery.record_count)
        try:
            warehouse.insert_file(
                tables.load_select(delivery.pk, received_ms, *((None, None) if whole else (first, last))),
                pool.table,
                path,
                settings={
                    "insert_deduplication_token": delivery.dedup_token
                    if whole
                    else f"{delivery.dedup_token}/{first}-{last}"
                },
            )
        except WarehouseError as exc:
            if not faults.is_content_error(exc):
                raise
            view = faults.refusing_view(exc)
            if view:
                # ClickHouse writes the pool's part before it runs the views: the pool has these
                # records, and inserting parts of them again would store them twice.
                log.warning("delivery %s: the Materialized View %s refused it: %s", delivery.pk, view, exc)
                return refused, f"stored; the Materialized View {view} refused it: {exc}"
            if first == last:
                position, data = warehouse.query_file(tables.record_select(first), path).rows[0]
                refused.append([position, data, f"refused by the warehouse: {exc}"])
                continue
            middle = (first + last) // 2
            pending += [(middle + 1, last), (first, middle)]
    return refused, ""


def _stored(warehouse: Warehouse, pool: DataPool, received_ms: dict[int, int]) -> dict[int, int]:
    """Rows of each delivery in the pool, counted in the data."""
    rows = warehouse.query(tables.stored_select(pool, received_ms)).rows
    return {int(delivery_id): int(count) for delivery_id, count in rows}


def _journal_file_gone(warehouse: Warehouse, delivery: Delivery, token: str) -> tuple[int, int]:
    """A landed delivery whose journal file is gone. Files are discarded only after their load
    committed, so this is a load whose bookkeeping was lost (a power cut with synchronous=NORMAL):
    its rows are in the warehouse. If they are not, say so loudly rather than guess."""
    received_ms = int(delivery.received_at.timestamp() * 1000)
    found = _stored(warehouse, delivery.pool, {delivery.pk: received_ms}).get(delivery.pk, 0)
    if not found:
        raise WarehouseError(f"journal file {delivery.body_path} is missing and no rows were loaded from it")
    log.warning("delivery %s was loaded before its bookkeeping was lost; marking it loaded", delivery.pk)
    finish(delivery, token, int(found), delivery.record_count - int(found))
    return int(found), delivery.record_count - int(found)


def finish(delivery: Delivery, token: str, loaded: int, quarantined: int, note: str = "") -> None:
    now = timezone.now()
    with transaction.atomic():
        moved = Delivery.objects.filter(
            id=delivery.pk, status=Delivery.Status.LOADING, claim_token=token
        ).update(
            status=Delivery.Status.LOADED,
            loaded_at=now,
            loaded_count=loaded,
            quarantined_count=quarantined,
            body=b"",
            body_path="",
            error=note[:4000],
            retry_at=None,
        )
        if moved:
            updates = {
                "record_count": F("record_count") + loaded,
                "quarantined_count": F("quarantined_count") + quarantined,
                "last_delivery_at": delivery.received_at,
                "updated_at": now,
            }
            DataPool.objects.filter(pk=delivery.pool_id).update(**updates)
            if loaded:
                # First data makes a pool live (also one whose table creation failed earlier: the
                # load just created it).
                DataPool.objects.filter(
                    pk=delivery.pool_id, status__in=[DataPool.Status.CREATED, DataPool.Status.FAILED]
                ).update(status=DataPool.Status.LIVE, status_detail="")
        if moved and delivery.body_path:
            transaction.on_commit(lambda: landing.discard(delivery.body_path))


def release(delivery_id: int, token: str, error: str, *, hold: bool = False) -> None:
    """Give a claimed delivery back after a failed load, to be retried after a back-off.

    `hold` keeps it aside as `failed` (a count that does not add up: a defect to investigate,
    with its body kept); a fault of the moment is retried for as long as it takes.
    """
    delivery = Delivery.objects.filter(id=delivery_id, claim_token=token).first()
    if delivery is None:
        return
    log.warning("load of delivery %s failed (attempt %s): %s", delivery_id, delivery.attempts, error)
    Delivery.objects.filter(id=delivery_id, claim_token=token).update(
        status=Delivery.Status.FAILED if hold else Delivery.Status.LANDED,
        claim_token="",
        claimed_at=None,
        error=error[:4000],
        retry_at=timezone.now() + faults.retry_delay(delivery.attempts),
    )


def _spool(delivery: Delivery) -> tuple[Path, bool]:
    """The file the warehouse reads the body from, and whether it is a temporary copy."""
    if delivery.body_path:
        return landing.path_of(delivery.body_path), False
    folder = settings.DATA_DIR / "spool"
    folder.mkdir(exist_ok=True)
    path = folder / f"delivery-{delivery.pk}-{uuid.uuid4().hex[:8]}.json"
    body = bytes(delivery.body)
    if delivery.content_encoding == "gzip":
        body = decompress(body, "gzip", max_bytes=settings.INGEST_MAX_BODY_BYTES)
    path.write_bytes(body)
    return path, True


def sweep(stale_after: float | None = None) -> list[int]:
    """Return stale claims to `landed` and list the pools that have deliveries waiting."""
    stale_after = settings.LOAD_STALE_SECONDS if stale_after is None else stale_after
    cutoff = timezone.now() - timedelta(seconds=stale_after)
    released = Delivery.objects.filter(status=Delivery.Status.LOADING, claimed_at__lt=cutoff).update(
        status=Delivery.Status.LANDED, claim_token="", claimed_at=None
    )
    if released:
        log.warning("sweep: %d deliveries were claimed by a loader that stopped; loading again", released)
    if landing.uses_files():
        recover_journal()
    return list(
        Delivery.objects.filter(status=Delivery.Status.LANDED)
        .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=timezone.now()))
        .values_list("pool_id", flat=True)
        .distinct()
    )


def recover_journal(older_than: float = 30.0) -> int:
    """Give journal files without a delivery row their row back (see landing.recover_orphans)."""
    from pools import envelope

    referenced = set(Delivery.objects.exclude(body_path="").values_list("body_path", flat=True))
    recovered = 0
    for public_id, path in landing.recover_orphans(referenced, older_than):
        relative = f"{public_id}/{path.name}"
        pool = DataPool.objects.filter(public_id=public_id).first()
        try:
            env = envelope.parse(path.read_bytes(), header_request_id="")
        except (envelope.EnvelopeError, OSError) as exc:
            log.error("journal file %s cannot be read (%s); moved aside", path, exc)
            path.rename(path.with_suffix(".unreadable"))
            continue
        if pool is None or Delivery.objects.filter(pool=pool, request_id=env.request_id).exists():
            landing.discard(relative)  # its pool is gone, or the batch is already stored
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
