"""Moving landed deliveries into the warehouse. Runs only in `warehouse` workers.

Group commit: one INSERT loads a batch of landed deliveries (one when the pool is idle, many under
load). The batch's members are saved before the insert and never change, and the insert carries a
deduplication token derived from the batch, so a load repeated after a crash inserts the same rows
under the same token and ClickHouse writes nothing the second time. Quarantine rows are unique per
(delivery, position), and the counters move only when the deliveries move to `loaded`, all of a
batch in one transaction.

What a 200 promised is checked against the data: after the insert, each delivery's rows in the
pool are counted; with the records quarantined they must make up its record count. A record the
warehouse refuses (a content error, see pools/faults.py) is found by splitting the batch in
halves, then the delivery by positions, deterministically, so that a repeated load makes the same
inserts with the same tokens; it is quarantined with ClickHouse's reason and the rest is loaded.
Any other fault is retried with back-off for as long as it takes. Then the pool's Materialized
Views run over the batch (views_mv/apply.py).
"""

from __future__ import annotations

import logging
import threading
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
from pools.models import DataPool, Delivery, LoadBatch, QuarantinedRecord

log = logging.getLogger(__name__)

_known_tables: set[tuple[int, str]] = set()


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


def _ready(pool_id: int):
    return Delivery.objects.filter(pool_id=pool_id, status=Delivery.Status.LANDED).filter(
        Q(retry_at__isnull=True) | Q(retry_at__lte=timezone.now())
    )


def claim(pool_id: int, limit: int | None = None) -> tuple[str, list[int]]:
    """Take the next load batch of a pool; returns the claim token and its deliveries' ids.

    A batch that was started and not finished is taken again as it was. Otherwise a new one is
    made of what has landed — one delivery when the pool is idle, many under load, up to
    `limit` deliveries, LOAD_BATCH_BYTES and LOAD_BATCH_RECORDS — and its members are saved
    before anything is inserted.
    """
    token = uuid.uuid4().hex
    batch_id = (
        _ready(pool_id).filter(batch__isnull=False).order_by("id").values_list("batch_id", flat=True).first()
    )
    if batch_id is None:
        batch_id = _new_batch(pool_id, limit or settings.LOAD_BATCH_DELIVERIES)
        if batch_id is None:
            return token, []
    # Members that are loaded are done; held ones (failed) wait for the admin to re-queue them.
    members = Delivery.objects.filter(
        batch_id=batch_id, status__in=[Delivery.Status.LANDED, Delivery.Status.LOADING]
    )
    claimed = members.filter(status=Delivery.Status.LANDED).update(
        status=Delivery.Status.LOADING,
        claim_token=token,
        claimed_at=timezone.now(),
        attempts=F("attempts") + 1,
    )
    ids = list(members.filter(claim_token=token).order_by("id").values_list("id", flat=True))
    if claimed != members.count():  # part of the batch is still held by another loader
        Delivery.objects.filter(claim_token=token).update(
            status=Delivery.Status.LANDED, claim_token="", claimed_at=None
        )
        return token, []
    return token, ids


def _new_batch(pool_id: int, limit: int) -> int | None:
    candidates = _ready(pool_id).filter(batch__isnull=True).order_by("id")
    chosen, size, records = [], 0, 0
    for delivery_id, body_bytes, record_count in candidates.values_list("id", "body_bytes", "record_count")[
        :limit
    ]:
        if chosen and (
            size + body_bytes > settings.LOAD_BATCH_BYTES
            or records + record_count > settings.LOAD_BATCH_RECORDS
        ):
            break
        chosen.append(delivery_id)
        size, records = size + body_bytes, records + record_count
    if not chosen:
        return None
    with transaction.atomic():
        batch = LoadBatch.objects.create(pool_id=pool_id)
        taken = Delivery.objects.filter(id__in=chosen, batch__isnull=True).update(batch=batch)
    return batch.pk if taken else None


# One loader per pool and process: a load task that finds one running leaves the work to it, so
# that what lands meanwhile is loaded together, in the next batch, rather than in small pieces.
_running: set[int] = set()
_wanted: set[int] = set()
_running_lock = threading.Lock()


def load_pool(warehouse: Warehouse, pool_id: int, *, batch: int | None = None) -> LoadOutcome:
    """Load every landed delivery of a pool, a batch at a time, until none is left.

    After a failure the loop stops: what failed waits for its back-off, instead of being
    retried at once against a warehouse that just refused it.
    """
    outcome = LoadOutcome()
    with _running_lock:
        _wanted.add(pool_id)
        if pool_id in _running:
            return outcome
        _running.add(pool_id)
    try:
        while True:
            with _running_lock:
                _wanted.discard(pool_id)
            _drain(warehouse, pool_id, batch, outcome)
            with _running_lock:
                if outcome.failed or pool_id not in _wanted:
                    _running.discard(pool_id)
                    return outcome
    except BaseException:
        with _running_lock:
            _running.discard(pool_id)
        raise


def _drain(warehouse: Warehouse, pool_id: int, limit: int | None, outcome: LoadOutcome) -> None:
    while True:
        token, ids = claim(pool_id, limit)
        if not ids:
            return
        try:
            results = load_batch(warehouse, ids, token)
        except Exception as exc:  # WarehouseError, or anything else: never leave it claimed
            if not isinstance(exc, WarehouseError):
                log.exception("load of deliveries %s failed", ids)
            for delivery_id in ids:
                release(delivery_id, token, str(exc))
            outcome.failed += len(ids)
            return
        for loaded, quarantined in results:
            outcome.deliveries += 1
            outcome.records += loaded
            outcome.quarantined += quarantined
        if len(results) < len(ids):
            outcome.failed += len(ids) - len(results)
            return


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
            from views_mv.apply import run_views

            accounted = [m for m in members if m.delivery.pk in accounts]
            if accounted:
                bounds = [min(m.received_ms for m in accounted), max(m.received_ms for m in accounted)]
                run_views(warehouse, pool.pk, [m.delivery.pk for m in accounted], bounds, batch_token)
            _finish_batch(members, token, accounts, held, note, batch_token)
    finally:
        for member in members:
            if member.spooled:
                member.path.unlink(missing_ok=True)
    return [accounts[m.delivery.pk] for m in members if m.delivery.pk in accounts]


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
    refused: dict[int, list[list]] = {}
    pending: list[tuple[list[_Member], int | None, int | None, str]] = [(members, None, None, token)]
    while pending:
        group, first, last, part_token = pending.pop()
        files = [(m.path.name, m.delivery.pk, m.received_ms) for m in group]
        try:
            warehouse.insert_files(
                tables.load_select(files, first, last),
                pool.table,
                [m.path for m in group],
                settings={"insert_deduplication_token": part_token, **ONE_BLOCK},
            )
        except WarehouseError as exc:
            if not faults.is_content_error(exc):
                raise
            view = faults.refusing_view(exc)
            if view:
                # ClickHouse writes the pool's part before it runs a trigger: the pool has these
                # records, and inserting parts of them again would store them twice.
                log.warning("the Materialized View %s refused a load into %s: %s", view, pool.name, exc)
                return refused, f"stored; the Materialized View {view} refused it: {exc}"
            if len(group) > 1:
                middle = len(group) // 2
                pending.append((group[middle:], None, None, f"{part_token}/h1"))
                pending.append((group[:middle], None, None, f"{part_token}/h0"))
                continue
            member = group[0]
            first, last = (first, last) if first is not None else (1, member.delivery.record_count)
            if first == last:
                position, data = warehouse.query_file(tables.record_select(first), member.path).rows[0]
                refused.setdefault(member.delivery.pk, []).append(
                    [position, data, f"refused by the warehouse: {exc}"]
                )
                continue
            middle = (first + last) // 2
            pending.append((group, middle + 1, last, f"{part_token}/{middle + 1}-{last}"))
            pending.append((group, first, middle, f"{part_token}/{first}-{middle}"))
    return refused, ""


# One INSERT makes one block (per partition): with a deduplication token, ClickHouse derives each
# block's id from the token and from which chunks of the SELECT went into it, so a repeated insert
# must read the same files in the same way. One reading thread and squashing up to these sizes
# (above a batch's limits) make that so. (A part of a batch inserted alone is therefore not
# recognised as a repeat: see the re-queued held delivery in load_batch.)
ONE_BLOCK = {
    "max_threads": 1,
    "min_insert_block_size_rows": 10_000_000,
    "min_insert_block_size_bytes": 4 * 1024**3,
    "max_insert_block_size": 10_000_000,
}


def _account(
    warehouse: Warehouse, pool: DataPool, members: list[_Member], refused: dict[int, list[list]]
) -> tuple[dict[int, tuple[int, int]], dict[int, str]]:
    """Count each member's rows in the pool, quarantine what is not there, and check that every
    acknowledged record is in one place or the other. Returns ({id: (stored, quarantined)} of
    the members that add up, {id: why} of those held for investigation)."""
    stored = _stored(warehouse, pool, {m.delivery.pk: m.received_ms for m in members})
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
            quarantine += warehouse.query_file(tables.rejected_select(), member.path).rows
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
    from views_mv.apply import finished

    with transaction.atomic():
        finished(batch_token)
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
