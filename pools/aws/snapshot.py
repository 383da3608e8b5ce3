"""Initial snapshot ("Backfill existing items"): the items a table held before its stream was turned
on, loaded into the pool as INSERT change events older than any streamed change.

The pipeline turns the table's streaming on first (its last provisioning step); only then may a
snapshot start. Every change from that moment on arrives through the stream, so a parallel Scan run
afterwards misses nothing: an item changed or deleted while the scan runs is both scanned (perhaps)
and streamed, and the streamed change wins, because a snapshot record says
ApproximateCreationDateTime = 0 and every streamed change carries its real time.

    run_snapshot(snapshot_id)      # what the `default` worker's task does; resumes where it stopped

Each page of a segment's Scan becomes one Firehose-format delivery (snapshot_pages.py): a page read
again after a crash with the same content is stored once, and a page whose content changed in
between is stored too (its records carry the same event ids and version 0, so they collapse in the
replica, and whatever changed is also on the stream).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import close_old_connections, connections
from django.db.models import F, Q
from django.utils import timezone

from pools.aws import errors, export_snapshot
from pools.aws.clients import connect
from pools.aws.models import Pipeline, Snapshot
from pools.aws.snapshot_pages import (
    CapacityBudget,
    item_to_change_record,
    key_from_json,
    key_to_json,
    now_ms,
    page_request_id,
    scan_segment,
)
from pools.ingest.landing import backpressure
from pools.reading import Batch, into_pool, land_batches

log = logging.getLogger(__name__)

MAX_SEGMENTS = 16
STALE_AFTER = timedelta(minutes=2)  # a running snapshot without a heartbeat for this long was interrupted
BACKPRESSURE_WAIT = 2.0  # seconds between looks while the pool's backlog is too large


def streaming_ready(pipeline: Pipeline) -> bool:
    """Whether the table streams into the pool (or, in the sandbox, the relay stands in for it):
    only then is a snapshot complete, since changes made during the scan arrive on the stream."""
    if pipeline.status != Pipeline.Status.ACTIVE or pipeline.destination_enabled_at is None:
        return False
    # A pull that starts at a later time would leave out the changes made between the scan and then.
    return not pipeline.pulls or pipeline.pull_start_at is None or pipeline.pull_start_at <= timezone.now()


class SnapshotError(Exception):
    """A snapshot cannot start (the message says why)."""


def start(
    pipeline: Pipeline,
    *,
    total_segments: int = 4,
    max_rcu_per_second: float = 0,
    page_limit: int = 0,
    method: str = Snapshot.Method.SCAN,
    export_bucket: str = "",
    enable_pitr: bool = False,
    user=None,
) -> Snapshot:
    """Create a snapshot (not queued: see tasks.start_snapshot). An export turns point-in-time
    recovery on first when asked to (enable_pitr), in the task, as the other AWS calls."""
    if not streaming_ready(pipeline):
        if pipeline.status == Pipeline.Status.ACTIVE and pipeline.destination_enabled_at is not None:
            when = f"{pipeline.pull_start_at:%Y-%m-%d %H:%M:%S} UTC"
            raise SnapshotError(
                f"The backfill can start once the reader starts, at {when}: changes made before then "
                "would be missed."
            )
        raise SnapshotError("The backfill can start once the table streams to the pool (the last step).")
    if pipeline.snapshots.filter(status__in=[Snapshot.Status.PENDING, Snapshot.Status.RUNNING]).exists():
        raise SnapshotError("A backfill of this table is already running.")
    return Snapshot.objects.create(
        pipeline=pipeline,
        table_name=pipeline.table_name,
        total_segments=max(1, min(MAX_SEGMENTS, int(total_segments))),
        max_rcu_per_second=max(0.0, float(max_rcu_per_second or 0)),
        page_limit=max(0, int(page_limit or 0)),
        method=method,
        export_bucket=(export_bucket or "").strip(),
        enable_pitr=bool(enable_pitr),
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )


def claim(snapshot_id: int, task_id: str = "") -> bool:
    """Take a snapshot to run, with a conditional UPDATE: queued, paused or failed ones, and
    running ones whose runner stopped beating (a worker that died)."""
    now = timezone.now()
    runnable = Q(status__in=[Snapshot.Status.PENDING, Snapshot.Status.PAUSED, Snapshot.Status.FAILED]) | Q(
        status=Snapshot.Status.RUNNING, heartbeat_at__lt=now - STALE_AFTER
    )
    return bool(
        Snapshot.objects.filter(runnable, pk=snapshot_id).update(
            status=Snapshot.Status.RUNNING,
            error="",
            pause_requested=False,
            heartbeat_at=now,
            started_at=now,
            finished_at=None,
            task_id=task_id[:64],
            runs=F("runs") + 1,
        )
    )


def interrupted(snapshot: Snapshot) -> bool:
    """Running, but no runner has reported for a while: its worker stopped."""
    return (
        snapshot.status == Snapshot.Status.RUNNING
        and snapshot.heartbeat_at is not None
        and timezone.now() - snapshot.heartbeat_at > STALE_AFTER
    )


@dataclass
class _Run:
    snapshot: Snapshot
    budget: CapacityBudget
    stop_after_pages: int | None
    lock: threading.Lock = field(default_factory=threading.Lock)
    pages_this_run: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    paused: bool = False


def run_snapshot(
    snapshot_id: int,
    *,
    task_id: str = "",
    stop_after_pages: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Snapshot:
    """Run (or resume) a snapshot to its end; returns it as it ended.

    stop_after_pages: stop, as paused, after that many pages in this run (tests use it to interrupt
    a snapshot at a known point). A snapshot someone else is running is left alone.
    """
    if not claim(snapshot_id, task_id):
        return Snapshot.objects.get(pk=snapshot_id)
    snapshot = Snapshot.objects.select_related("pipeline__connection", "pipeline__pool").get(pk=snapshot_id)
    run = _Run(snapshot, CapacityBudget(snapshot.max_rcu_per_second, sleep=sleep), stop_after_pages)
    try:
        _describe(snapshot, connect(snapshot.pipeline.connection).client("dynamodb"))
        if snapshot.method == Snapshot.Method.EXPORT:
            export_snapshot.run(snapshot, lambda: _wait_for_room(run, snapshot.pipeline.pool))
        else:
            _scan(run)
    except export_snapshot.Stopped:
        pass  # paused or cancelled: the status says which, below
    except Exception as exc:
        log.warning("snapshot %s of %s failed: %s", snapshot_id, snapshot.table_name, exc)
        Snapshot.objects.filter(pk=snapshot_id).update(
            status=Snapshot.Status.FAILED, error=str(errors.describe(exc)), finished_at=timezone.now()
        )
        return Snapshot.objects.get(pk=snapshot_id)
    snapshot.refresh_from_db()
    if snapshot.cancel_requested:
        status = Snapshot.Status.CANCELLED
    elif finished(snapshot):
        status = Snapshot.Status.DONE
    else:
        status = Snapshot.Status.PAUSED
    Snapshot.objects.filter(pk=snapshot_id, status=Snapshot.Status.RUNNING).update(
        status=status, finished_at=timezone.now(), pause_requested=False
    )
    snapshot.refresh_from_db()
    return snapshot


def finished(snapshot: Snapshot) -> bool:
    if snapshot.method == Snapshot.Method.EXPORT:
        return export_snapshot.finished(snapshot)
    return all(snapshot.segments.get(str(s), {}).get("finished") for s in range(snapshot.total_segments))


def _scan(run: _Run) -> None:
    """The parallel Scan: every segment not finished yet, each in a thread of its own."""
    snapshot = run.snapshot
    pending = [
        seg
        for seg in range(snapshot.total_segments)
        if not snapshot.segments.get(str(seg), {}).get("finished")
    ]
    if pending:
        with ThreadPoolExecutor(max_workers=len(pending), thread_name_prefix="snapshot") as pool:
            futures = [pool.submit(_run_segment, run, seg) for seg in pending]
            failures = [f.exception() for f in futures if f.exception() is not None]
        if failures:
            raise failures[0]


def _describe(snapshot: Snapshot, client) -> None:
    """Key names and the item count estimate, from DescribeTable (once per run)."""
    table = client.describe_table(TableName=snapshot.table_name)["Table"]
    snapshot.key_names = [k["AttributeName"] for k in table["KeySchema"]]
    snapshot.item_count_estimate = table.get("ItemCount")
    Snapshot.objects.filter(pk=snapshot.pk).update(
        key_names=snapshot.key_names, item_count_estimate=snapshot.item_count_estimate
    )


def _run_segment(run: _Run, segment: int) -> None:
    try:
        _scan_segment_pages(run, segment)
    except BaseException:
        run.stop.set()  # one failed segment stops the others at their next page
        raise
    finally:
        connections.close_all()  # this thread's database connection


def _scan_segment_pages(run: _Run, segment: int) -> None:
    """The segment's pages through the one reading loop (pools/reading.py): each page lands as a
    delivery with the segment's position saved in the same transaction."""
    snapshot = run.snapshot
    pipeline = snapshot.pipeline
    source_arn = pipeline.table_arn or f"dynamodb-table:{snapshot.table_name}"

    def save(batch: Batch, stored: bool) -> None:
        state, items, consumed = batch.position
        _save(run, segment, state, items=items, rcu=consumed, stored=stored)

    land_batches(
        _segment_pages(run, segment),
        land=into_pool(pipeline.pool, source_arn=source_arn),
        save=save,
        room=lambda: _wait_for_room(run, pipeline.pool),
        stop=run.stop.is_set,
    )


def _segment_pages(run: _Run, segment: int) -> Iterator[Batch]:
    """A batch per Scan page of the segment, from where it stopped; its position is the segment's
    state after the page. The read-capacity budget is spent once the page is saved."""
    snapshot = run.snapshot
    region = snapshot.pipeline.connection.region
    client = connect(snapshot.pipeline.connection).client("dynamodb")
    with run.lock:
        state = {"lek": None, "pages": 0, "items": 0, "rcu": 0.0, "finished": False}
        state.update(snapshot.segments.get(str(segment)) or {})
    while not state["finished"]:
        close_old_connections()
        items, lek, consumed = scan_segment(
            client,
            snapshot.table_name,
            segment,
            snapshot.total_segments,
            key_from_json(state["lek"]),
            snapshot.page_limit,
        )
        records = [item_to_change_record(i, snapshot.key_names, snapshot.table_name, region) for i in items]
        request_id = page_request_id(snapshot.uid, segment, state["pages"], records)
        state = {
            **state,
            "lek": key_to_json(lek),
            "pages": state["pages"] + 1,
            "items": state["items"] + len(items),
            "rcu": round(state["rcu"] + consumed, 3),
            "finished": lek is None,
        }
        yield Batch(request_id, records, position=(state, len(items), consumed), timestamp_ms=now_ms())
        slept = run.budget.spend(consumed)
        if slept:
            with run.lock:
                Snapshot.objects.filter(pk=snapshot.pk).update(
                    throttled_seconds=round(_add(snapshot, "throttled_seconds", slept), 3)
                )


def _add(snapshot: Snapshot, name: str, amount: float) -> float:
    value = getattr(snapshot, name) + amount
    setattr(snapshot, name, value)
    return value


def _save(run: _Run, segment: int, state: dict, *, items: int, rcu: float, stored: bool) -> None:
    """The segment's position and the counters, after each page (what a resume starts from)."""
    snapshot = run.snapshot
    with run.lock:
        snapshot.segments = {**snapshot.segments, str(segment): dict(state)}
        snapshot.items_done += items
        snapshot.pages_done += 1
        snapshot.consumed_rcu = round(snapshot.consumed_rcu + rcu, 3)
        snapshot.deliveries_stored += int(stored)
        Snapshot.objects.filter(pk=snapshot.pk).update(
            segments=snapshot.segments,
            items_done=snapshot.items_done,
            pages_done=snapshot.pages_done,
            consumed_rcu=snapshot.consumed_rcu,
            deliveries_stored=snapshot.deliveries_stored,
            heartbeat_at=timezone.now(),
        )
        run.pages_this_run += 1
        enough = run.stop_after_pages is not None and run.pages_this_run >= run.stop_after_pages
        if enough or Snapshot.objects.filter(pk=snapshot.pk, pause_requested=True).exists():
            run.stop.set()


def _wait_for_room(run: _Run, pool) -> None:
    """Hold the page while the pool's backlog is past the ingest limits: the warehouse catches up
    first, as Firehose would be asked to wait with a 503."""
    while not run.stop.is_set():
        busy = backpressure(pool)
        if not busy:
            return
        log.info("snapshot %s waits: %s", run.snapshot.pk, busy)
        Snapshot.objects.filter(pk=run.snapshot.pk).update(heartbeat_at=timezone.now())
        time.sleep(BACKPRESSURE_WAIT)
