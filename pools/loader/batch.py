"""Loading one claimed batch: one INSERT of its bodies, the refused records isolated and
quarantined, every acknowledged record accounted for, the hooks of the apps above (the pool's views)
run, and the batch's deliveries finished together."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from console.warehouse import Warehouse, WarehouseError, loggable
from pools import faults, sources, tables
from pools.gate import gate
from pools.ingest import journal
from pools.ingest.envelope import decompress
from pools.loader import hooks
from pools.loader.claims import release
from pools.models import DataPool, Delivery, QuarantinedRecord

log = logging.getLogger(__name__)
UNKNOWN_TABLE = 60  # ClickHouse's code

_known_tables: set[tuple[int, str]] = set()


def ensure_table(warehouse: Warehouse, pool: DataPool) -> None:
    key = (pool.pk, pool.name)
    if key not in _known_tables:
        warehouse.execute(tables.create_table(pool))
        _known_tables.add(key)


def forget_table(pool_id: int) -> None:
    for key in [k for k in _known_tables if k[0] == pool_id]:
        _known_tables.discard(key)


@dataclass
class _Member:
    delivery: Delivery
    path: Path
    spooled: bool
    received_ms: int


def load_batch(warehouse: Warehouse, ids: list[int], token: str) -> list[tuple[int, int]]:
    """Insert one claimed batch with one INSERT, account for every record, run the pool's views
    and finish its deliveries together; returns (loaded, quarantined) of each finished one.

    A delivery whose count does not add up is held (failed, body kept); the rest finish.
    """
    deliveries = list(
        Delivery.objects.select_related("pool", "batch__pool").filter(id__in=ids).order_by("id")
    )
    pool = deliveries[0].pool
    ensure_table(warehouse, pool)
    # A batch of one keeps its delivery's token (as loads did before group commit). A member that
    # was held and is re-queued keeps its batch's token: the rows it gave then are not doubled.
    batch = deliveries[0].batch
    alone = batch is None or Delivery.objects.filter(batch=batch).count() == 1
    batch_token = deliveries[0].dedup_token if alone else batch.dedup_token
    members: list[_Member] = []
    try:
        for delivery in deliveries:
            path, spooled = _spool(delivery)
            members.append(_Member(delivery, path, spooled, int(delivery.received_at.timestamp() * 1000)))
        # Views are attached under this gate (views_mv/tasks.py): a delivery is either finished
        # before a view's backfill is planned, or runs through that view here.
        with gate(pool.pk).shared():
            present = [m for m in members if m.path.exists()]
            if batch is not None and Delivery.objects.filter(batch=batch).exclude(id__in=ids).exists():
                # Part of the batch was finished or held, which happens only after its insert: a
                # held delivery re-queued alone. Its rows are in the pool; inserting a part of
                # the batch again would not be recognised as a repeat.
                refused, note = _quarantined_before(ids), ""
            elif present:
                refused, note = _insert_isolating(warehouse, pool, present, batch_token)
            else:
                refused, note = {}, ""
            accounts, held = _account(warehouse, pool, members, refused)
            accounted = [m for m in members if m.delivery.pk in accounts]
            if accounted:
                bounds = [min(m.received_ms for m in accounted), max(m.received_ms for m in accounted)]
                hooks.run(warehouse, pool.pk, [m.delivery.pk for m in accounted], bounds, batch_token)
            _finish_batch(members, token, accounts, held, note, batch_token)
    finally:
        for member in members:
            if member.spooled:
                member.path.unlink(missing_ok=True)
    return [accounts[m.delivery.pk] for m in members if m.delivery.pk in accounts]


def _insert_part(
    warehouse: Warehouse,
    pool: DataPool,
    group: list[_Member],
    span: tuple[int | None, int | None],
    token: str,
) -> None:
    """One INSERT of the group's records (positions `span` of a single delivery, or all)."""
    files = [(m.path.name, m.delivery.pk, m.received_ms) for m in group]

    def insert() -> None:
        warehouse.insert_files(
            sources.of_pool(pool).load_select(files, *span),
            pool.table,
            [m.path for m in group],
            settings=insert_settings(token),
        )

    try:
        insert()
    except WarehouseError as exc:
        if exc.code != UNKNOWN_TABLE:
            raise
        # The table is gone though this process remembered creating it (a drop ran beside that
        # create, or the table was dropped by hand): create it again and insert.
        forget_table(pool.pk)
        ensure_table(warehouse, pool)
        insert()


def _insert_isolating(
    warehouse: Warehouse, pool: DataPool, members: list[_Member], token: str
) -> tuple[dict[int, list[list]], str]:
    """Insert the members' records, leaving out those the warehouse refuses.

    On a content error the batch is split in halves, then a single delivery by positions, until
    the refused records are alone. The splits depend only on the batch's members, and each part
    has a token derived from the batch's, so a repeated load makes the same inserts. Returns the
    refused records ({delivery id: [[position, data, reason]]}) and, if a view trigger of an
    older version refused the records after the pool had stored them, that view's error.
    """
    source = sources.of_pool(pool)
    refused: dict[int, list[list]] = {}
    pending: list[tuple[list[_Member], int | None, int | None, str]] = [(members, None, None, token)]
    while pending:
        group, first, last, part_token = pending.pop()
        try:
            _insert_part(warehouse, pool, group, (first, last), part_token)
        except WarehouseError as exc:
            if not faults.is_content_error(exc):
                raise
            view = faults.refusing_view(exc)
            if view:
                # ClickHouse writes the pool's part before it runs a trigger: the pool has these
                # records, and inserting parts of them again would store them twice.
                log.warning(
                    "the Materialized View %s refused a load into %s: %s", view, pool.name, loggable(exc)
                )
                return refused, f"stored; the Materialized View {view} refused it: {exc}"
            if len(group) > 1:
                middle = len(group) // 2
                pending.append((group[middle:], None, None, f"{part_token}/h1"))
                pending.append((group[:middle], None, None, f"{part_token}/h0"))
                continue
            member = group[0]
            first, last = (first, last) if first is not None else (1, member.delivery.record_count)
            if first == last:
                position, data = warehouse.query_file(source.record_select(first), member.path).rows[0]
                refused.setdefault(member.delivery.pk, []).append(
                    [position, data, f"refused by the warehouse: {exc}"]
                )
                continue
            middle = (first + last) // 2
            pending.append((group, middle + 1, last, f"{part_token}/{middle + 1}-{last}"))
            pending.append((group, first, middle, f"{part_token}/{first}-{middle}"))
    return refused, ""


# One INSERT makes one block (per partition): with a deduplication token, ClickHouse names the
# n-th block an insert writes after the token and n, so a repeated insert is recognised only if it
# writes the same blocks. Squashing up to these sizes (above a batch's limits) into one insert
# stream makes one block whatever the reading side does, so the SELECT reads and parses with
# LOAD_READ_THREADS threads (tests/test_load_dedup.py: the same batch read with 1, 2 or 4 threads,
# in chunks of any size, is stored once). (A part of a batch inserted alone is not recognised as a
# repeat: see the re-queued held delivery in load_batch.)
ONE_BLOCK = {
    "max_insert_threads": 1,
    "min_insert_block_size_rows": 10_000_000,
    "min_insert_block_size_bytes": 4 * 1024**3,
    "max_insert_block_size": 10_000_000,
}


def insert_settings(token: str) -> dict:
    return {"insert_deduplication_token": token, "max_threads": settings.LOAD_READ_THREADS, **ONE_BLOCK}


def _account(
    warehouse: Warehouse, pool: DataPool, members: list[_Member], refused: dict[int, list[list]]
) -> tuple[dict[int, tuple[int, int]], dict[int, str]]:
    """Count each member's rows in the pool, quarantine what is not there, and check that every
    acknowledged record is in one place or the other. Returns ({id: (stored, quarantined)} of
    the members that add up, {id: why} of those held for investigation)."""
    stored = _stored(warehouse, pool, {m.delivery.pk: m.received_ms for m in members})
    rejected = sources.of_pool(pool).rejected_select()
    accounts: dict[int, tuple[int, int]] = {}
    held: dict[int, str] = {}
    for member in members:
        delivery = member.delivery
        count = stored.get(delivery.pk, 0)
        quarantine = list(refused.get(delivery.pk, []))
        if not member.path.exists():
            # A journal file is discarded only after its load committed: this is a load whose
            # bookkeeping was lost (a power cut with synchronous=NORMAL). Its rows tell the rest.
            if count:
                log.warning("delivery %s was loaded before its bookkeeping was lost", delivery.pk)
                accounts[delivery.pk] = (count, delivery.record_count - count)
            else:
                held[delivery.pk] = (
                    f"journal file {delivery.body_path} is missing and no rows were loaded from it"
                )
            continue
        if count + len(quarantine) < delivery.record_count:
            # Records that are not change records were left out by the insert: which, and why.
            quarantine += warehouse.query_file(rejected, member.path).rows
        quarantine = list({row[0]: row for row in quarantine}.values())  # once per position
        if count + len(quarantine) != delivery.record_count:
            held[delivery.pk] = (
                f"{delivery.record_count} records were acknowledged, but {count} are in the pool and "
                f"{len(quarantine)} in quarantine; the body is kept for investigation"
            )
            continue
        if quarantine:
            QuarantinedRecord.objects.bulk_create(
                [
                    QuarantinedRecord(
                        pool=pool, delivery=delivery, position=p, data=data, reason=reason[:200]
                    )
                    for p, data, reason in quarantine
                ],
                ignore_conflicts=True,
            )
        accounts[delivery.pk] = (count, len(quarantine))
    return accounts, held


def _finish_batch(
    members: list[_Member],
    token: str,
    accounts: dict[int, tuple[int, int]],
    held: dict[int, str],
    note: str,
    batch_token: str,
) -> None:
    """Finish the batch's deliveries in one transaction: all of them, or (after a crash) none,
    so that a batch taken again has the same members."""
    with transaction.atomic():
        hooks.finished(batch_token)
        for member in members:
            if member.delivery.pk in held:
                release(member.delivery.pk, token, held[member.delivery.pk], hold=True)
            else:
                finish(member.delivery, token, *accounts[member.delivery.pk], note=note)


def _quarantined_before(ids: list[int]) -> dict[int, list[list]]:
    refused: dict[int, list[list]] = {}
    for q in QuarantinedRecord.objects.filter(delivery_id__in=ids).order_by("position"):
        refused.setdefault(q.delivery_id, []).append([q.position, q.data, q.reason])
    return refused


def _stored(warehouse: Warehouse, pool: DataPool, received_ms: dict[int, int]) -> dict[int, int]:
    """Rows of each delivery in the pool, counted in the data."""
    rows = warehouse.query(tables.stored_select(pool, received_ms)).rows
    return {int(delivery_id): int(count) for delivery_id, count in rows}


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
            transaction.on_commit(lambda: journal.discard(delivery.body_path))


def _spool(delivery: Delivery) -> tuple[Path, bool]:
    """The file the warehouse reads the body from, and whether it is a temporary copy."""
    if delivery.body_path:
        return journal.path_of(delivery.body_path), False
    folder = settings.DATA_DIR / "spool"
    folder.mkdir(exist_ok=True)
    path = folder / f"delivery-{delivery.pk}-{uuid.uuid4().hex[:8]}.json"
    body = bytes(delivery.body)
    if delivery.content_encoding == "gzip":
        body = decompress(body, "gzip", max_bytes=settings.INGEST_MAX_BODY_BYTES)
    path.write_bytes(body)
    return path, True
