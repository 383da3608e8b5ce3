"""Initial snapshot ("Backfill existing items"): the items a table held before its stream was turned
on, loaded into the pool as INSERT change events older than any streamed change.

The pipeline turns the table's streaming on first (its last provisioning step); only then may a
snapshot start. Every change from that moment on arrives through the stream, so a parallel Scan run
afterwards misses nothing: an item changed or deleted while the scan runs is both scanned (perhaps)
and streamed, and the streamed change wins, because a snapshot record says
ApproximateCreationDateTime = 0 and every streamed change carries its real time.

    run_snapshot(snapshot_id)      # what the `default` worker's task does; resumes where it stopped

Each page of a segment's Scan becomes one Firehose-format delivery, stored with `pools.ingest.land`
(the one path into a pool) under a request id made of the snapshot, segment, page number and a
digest of the page's records: a page read again after a crash with the same content is stored once,
and a page whose content changed in between is stored too (its records carry the same event ids and
version 0, so they collapse in the replica, and whatever changed is also on the stream).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import close_old_connections, connections
from django.db.models import F, Q
from django.utils import timezone

from pools import envelope
from pools.aws import errors
from pools.aws.clients import connect
from pools.aws.models import Pipeline, Snapshot

log = logging.getLogger(__name__)

SNAPSHOT_CREATION_TIME = 0  # older than every streamed change (those carry epoch milliseconds)
MAX_SEGMENTS = 16
STALE_AFTER = timedelta(minutes=2)  # a running snapshot without a heartbeat for this long was interrupted
BACKPRESSURE_WAIT = 2.0  # seconds between looks while the pool's backlog is too large


# --- Records ------------------------------------------------------------------------------------


def canonical_key(keys: dict) -> str:
    return json.dumps(keys, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def event_id(keys: dict) -> str:
    """The same item always gets the same id: a re-scan repeats records rather than adding new ones."""
    return "snapshot-" + hashlib.sha1(canonical_key(keys).encode()).hexdigest()


def _size_bytes(item: dict) -> int:
    # DynamoDB's item size is roughly the attribute names plus their values; the JSON length of
    # the values is close enough for an approximation.
    return sum(
        len(name.encode()) + len(json.dumps(value, separators=(",", ":"), default=_json_default))
        for name, value in item.items()
    )


def _json_default(value):
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()  # B and BS travel as base64, as in KDS
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def change_record(item: dict, key_names: list[str], table_name: str, region: str) -> dict:
    keys = {name: item[name] for name in key_names if name in item}
    return {
        "awsRegion": region,
        "eventID": event_id(keys),
        "eventName": "INSERT",
        "userIdentity": None,
        "recordFormat": "application/json",
        "tableName": table_name,
        "dynamodb": {
            "ApproximateCreationDateTime": SNAPSHOT_CREATION_TIME,
            "ApproximateCreationDateTimePrecision": "MILLISECOND",
            "Keys": keys,
            "NewImage": item,
            "SizeBytes": _size_bytes(item),
        },
        "eventSource": "aws:dynamodb",
    }


def item_to_change_record(item: dict, key_names: list[str], table_name: str, region: str) -> bytes:
    """A KDS-shaped INSERT change record (spec §2.2) of an item in DynamoDB JSON, as the low-level
    client's Scan returns it (binary values as bytes are written as base64)."""
    record = change_record(item, key_names, table_name, region)
    return json.dumps(record, default=_json_default, separators=(",", ":")).encode()


def firehose_body(request_id: str, records: list[bytes], timestamp_ms: int) -> bytes:
    """A Firehose HTTP endpoint request body (spec §1) carrying the records."""
    doc = {
        "requestId": request_id,
        "timestamp": timestamp_ms,
        "records": [{"data": base64.b64encode(r).decode()} for r in records],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def page_request_id(snapshot_uid: str, segment: int, page: int, records: list[bytes]) -> str:
    digest = hashlib.sha1(b"\n".join(records)).hexdigest()[:16]
    return f"snapshot-{snapshot_uid}-{segment}-{page}-{digest}"


def land_page(pool, request_id: str, records: list[bytes], *, source_arn: str = "") -> bool:
    """Store one page as a delivery; False when this request id was stored before."""
    from pools.ingest import land

    now_ms = int(time.time() * 1000)
    body = firehose_body(request_id, records, now_ms)
    env = envelope.Envelope(request_id=request_id, timestamp=now_ms, record_count=len(records))
    return land(pool, env, body, "", source_arn, data=body)


# --- Scan ---------------------------------------------------------------------------------------


def key_to_json(key: dict | None) -> dict | None:
    """A LastEvaluatedKey as JSON for the database: binary key values (B) as base64."""
    if key is None:
        return None
    return {
        name: {"B": base64.b64encode(value["B"]).decode()} if isinstance(value.get("B"), bytes) else value
        for name, value in key.items()
    }


def key_from_json(key: dict | None) -> dict | None:
    if key is None:
        return None
    return {
        name: {"B": base64.b64decode(value["B"])} if isinstance(value.get("B"), str) else value
        for name, value in key.items()
    }


def scan_segment(
    client, table: str, segment: int, total_segments: int, exclusive_start_key: dict | None, page_limit: int
) -> tuple[list[dict], dict | None, float]:
    """One page of one segment: (items, LastEvaluatedKey or None at its end, consumed RCU)."""
    params: dict = {
        "TableName": table,
        "Segment": segment,
        "TotalSegments": total_segments,
        "ReturnConsumedCapacity": "TOTAL",
        "ConsistentRead": False,
    }
    if exclusive_start_key:
        params["ExclusiveStartKey"] = exclusive_start_key
    if page_limit:
        params["Limit"] = page_limit
    page = client.scan(**params)
    consumed = float((page.get("ConsumedCapacity") or {}).get("CapacityUnits") or 0.0)
    return page.get("Items", []), page.get("LastEvaluatedKey"), consumed


class CapacityBudget:
    """Keeps the read capacity the segments consume together under `rcu_per_second`.

    A Scan page's cost is known only after it is read, so each page is paid for afterwards: the
    budget is a queue in time, and a page of u units takes u / rate seconds of it. The caller
    sleeps until its page is paid for, so over any run the average stays at or under the budget.
    0 means no limit.
    """

    def __init__(
        self,
        rcu_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.rate = float(rcu_per_second or 0)
        self.clock = clock
        self.sleep = sleep
        self._paid_until = 0.0
        self._lock = threading.Lock()

    def spend(self, units: float) -> float:
        """Account for a page's units; sleeps as long as needed and returns the seconds slept."""
        if self.rate <= 0 or units <= 0:
            return 0.0
        with self._lock:
            now = self.clock()
            self._paid_until = max(self._paid_until, now) + units / self.rate
            wait = self._paid_until - now
        if wait > 0:
            self.sleep(wait)
        return max(wait, 0.0)


# --- Running a snapshot -------------------------------------------------------------------------


def streaming_ready(pipeline: Pipeline) -> bool:
    """Whether the table streams into the pool (or, in the sandbox, the relay stands in for it):
    only then is a snapshot complete, since changes made during the scan arrive on the stream."""
    return pipeline.status == Pipeline.Status.ACTIVE and pipeline.destination_enabled_at is not None


class SnapshotError(Exception):
    """A snapshot cannot start (the message says why)."""


def start(
    pipeline: Pipeline,
    *,
    total_segments: int = 4,
    max_rcu_per_second: float = 0,
    page_limit: int = 0,
    user=None,
) -> Snapshot:
    """Create a snapshot (not queued: see tasks.start_snapshot)."""
    if not streaming_ready(pipeline):
        raise SnapshotError("The backfill can start once the table streams to the pool (the last step).")
    if pipeline.snapshots.filter(status__in=[Snapshot.Status.PENDING, Snapshot.Status.RUNNING]).exists():
        raise SnapshotError("A backfill of this table is already running.")
    return Snapshot.objects.create(
        pipeline=pipeline,
        table_name=pipeline.table_name,
        total_segments=max(1, min(MAX_SEGMENTS, int(total_segments))),
        max_rcu_per_second=max(0.0, float(max_rcu_per_second or 0)),
        page_limit=max(0, int(page_limit or 0)),
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
    pipeline = snapshot.pipeline
    run = _Run(snapshot, CapacityBudget(snapshot.max_rcu_per_second, sleep=sleep), stop_after_pages)
    try:
        client = connect(pipeline.connection).client("dynamodb")
        _describe(snapshot, client)
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
    except Exception as exc:
        log.warning("snapshot %s of %s failed: %s", snapshot_id, snapshot.table_name, exc)
        Snapshot.objects.filter(pk=snapshot_id).update(
            status=Snapshot.Status.FAILED, error=str(errors.describe(exc)), finished_at=timezone.now()
        )
        return Snapshot.objects.get(pk=snapshot_id)
    snapshot.refresh_from_db()
    if all(snapshot.segments.get(str(s), {}).get("finished") for s in range(snapshot.total_segments)):
        status = Snapshot.Status.DONE
    else:
        status = Snapshot.Status.PAUSED
    Snapshot.objects.filter(pk=snapshot_id, status=Snapshot.Status.RUNNING).update(
        status=status, finished_at=timezone.now(), pause_requested=False
    )
    snapshot.refresh_from_db()
    return snapshot


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
    snapshot = run.snapshot
    pipeline = snapshot.pipeline
    pool = pipeline.pool
    region = pipeline.connection.region
    client = connect(pipeline.connection).client("dynamodb")
    with run.lock:
        state = dict(snapshot.segments.get(str(segment)) or {})
    state.setdefault("lek", None)
    state.setdefault("pages", 0)
    state.setdefault("items", 0)
    state.setdefault("rcu", 0.0)
    state.setdefault("finished", False)
    source_arn = pipeline.table_arn or f"dynamodb-table:{snapshot.table_name}"
    while not state["finished"] and not run.stop.is_set():
        close_old_connections()
        items, lek, consumed = scan_segment(
            client,
            snapshot.table_name,
            segment,
            snapshot.total_segments,
            key_from_json(state["lek"]),
            snapshot.page_limit,
        )
        stored = False
        if items:
            records = [
                item_to_change_record(i, snapshot.key_names, snapshot.table_name, region) for i in items
            ]
            request_id = page_request_id(snapshot.uid, segment, state["pages"], records)
            _wait_for_room(run, pool)
            stored = land_page(pool, request_id, records, source_arn=source_arn)
        state.update(
            lek=key_to_json(lek),
            pages=state["pages"] + 1,
            items=state["items"] + len(items),
            rcu=round(state["rcu"] + consumed, 3),
            finished=lek is None,
        )
        _save(run, segment, state, items=len(items), rcu=consumed, stored=stored)
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
    from pools.ingest import backpressure

    while not run.stop.is_set():
        busy = backpressure(pool)
        if not busy:
            return
        log.info("snapshot %s waits: %s", run.snapshot.pk, busy)
        Snapshot.objects.filter(pk=run.snapshot.pk).update(heartbeat_at=timezone.now())
        time.sleep(BACKPRESSURE_WAIT)
