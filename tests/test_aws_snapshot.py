"""Initial snapshot ("Backfill existing items"): a parallel Scan of a real moto server's table, landed
into a pool through the one ingest path and loaded by the real warehouse worker."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from console import warehouse_client
from console.tasks import run_sql
from pools.aws import snapshot as snapshots
from pools.aws import snapshot_pages
from pools.aws.models import Snapshot
from pools.models import Delivery
from tests.helpers.aws import make_pipeline
from tests.helpers.waiting import wait_for

TABLE = "customers"


def make_table(aws, count: int, table: str = TABLE) -> None:
    ddb = aws.client("dynamodb")
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    items = [
        {
            "pk": {"S": f"customer#{n:04d}"},
            "sk": {"N": str(n % 3)},
            "name": {"S": f"Customer {n}"},
            "visits": {"N": str(n * 7)},
            "tags": {"SS": ["taco", f"t{n % 5}"]},
        }
        for n in range(count)
    ]
    for start in range(0, count, 25):
        ddb.batch_write_item(
            RequestItems={table: [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]}
        )


def warehouse_counts(pool) -> tuple[int, int, int]:
    wait_for(
        lambda: not Delivery.objects.filter(pool=pool).exclude(status="loaded").exists(),
        timeout=30,
        message="every delivery loaded",
    )
    result = warehouse_client.call(
        run_sql,
        f"SELECT count(), uniqExact(event_id), uniqExact(toString(keys)) FROM {pool.name} "
        "WHERE event_name = 'INSERT' AND approximate_creation_date_time = 0",
    )
    assert "error" not in result, result
    return tuple(result["rows"][0])


def test_an_item_becomes_a_kds_insert_record():
    item = {
        "pk": {"S": "customer#1"},
        "sk": {"N": "2"},
        "photo": {"B": b"\x00\x01"},
        "tags": {"SS": ["a", "b"]},
        "address": {"M": {"city": {"S": "Oaxaca"}}},
    }
    raw = snapshot_pages.item_to_change_record(item, ["pk", "sk"], "customers", "eu-west-1")
    record = json.loads(raw)
    assert set(record) == {
        "awsRegion",
        "eventID",
        "eventName",
        "userIdentity",
        "recordFormat",
        "tableName",
        "dynamodb",
        "eventSource",
    }
    assert record["eventName"] == "INSERT" and record["userIdentity"] is None
    assert record["awsRegion"] == "eu-west-1" and record["tableName"] == "customers"
    assert record["recordFormat"] == "application/json" and record["eventSource"] == "aws:dynamodb"
    dynamodb = record["dynamodb"]
    assert dynamodb["ApproximateCreationDateTime"] == 0
    assert dynamodb["ApproximateCreationDateTimePrecision"] == "MILLISECOND"
    assert dynamodb["Keys"] == {"pk": {"S": "customer#1"}, "sk": {"N": "2"}}
    assert dynamodb["NewImage"]["photo"] == {"B": base64.b64encode(b"\0\1").decode()}
    assert dynamodb["NewImage"]["address"] == {"M": {"city": {"S": "Oaxaca"}}}
    assert "OldImage" not in dynamodb and dynamodb["SizeBytes"] > 0
    # The id depends on the key only: a re-scan (even of a changed item) repeats it.
    again = json.loads(
        snapshot_pages.item_to_change_record(
            {**item, "tags": {"SS": ["c"]}}, ["pk", "sk"], "customers", "eu-west-1"
        )
    )
    assert again["eventID"] == record["eventID"] and record["eventID"].startswith("snapshot-")
    other = json.loads(
        snapshot_pages.item_to_change_record({**item, "sk": {"N": "3"}}, ["pk", "sk"], "c", "r")
    )
    assert other["eventID"] != record["eventID"]


def test_the_budget_queues_pages_in_time():
    now = [100.0]
    slept: list[float] = []
    budget = snapshot_pages.CapacityBudget(
        4, clock=lambda: now[0], sleep=lambda s: (slept.append(s), now.__setitem__(0, now[0] + s))
    )
    for _ in range(4):
        budget.spend(2)  # 2 RCU a page at 4 RCU/s: half a second each
    assert slept == [0.5, 0.5, 0.5, 0.5]
    now[0] += 10  # idle time is not saved up beyond the present
    assert budget.spend(1) == 0.25
    assert snapshot_pages.CapacityBudget(0).spend(1000) == 0.0


def test_scan_segment_pages_through_one_segment(aws):
    make_table(aws, 40)
    client = aws.client("dynamodb")
    seen, lek, pages, rcu = [], None, 0, 0.0
    while True:
        items, lek, consumed = snapshot_pages.scan_segment(client, TABLE, 1, 2, lek, 5)
        seen += items
        pages += 1
        rcu += consumed
        assert len(items) <= 5
        if lek is None:
            break
    assert pages > 1 and rcu > 0  # moto reports ConsumedCapacity for ReturnConsumedCapacity=TOTAL
    other = []
    lek = None
    while True:
        items, lek, _ = snapshot_pages.scan_segment(client, TABLE, 0, 2, lek, 0)
        other += items
        if lek is None:
            break
    keys = {(i["pk"]["S"], i["sk"]["N"]) for i in seen + other}
    assert len(keys) == len(seen) + len(other) == 40


def test_a_parallel_scan_lands_every_item_once(pool, aws, warehouse_worker):
    make_table(aws, 250)
    pipeline = make_pipeline(pool, aws, TABLE)
    snapshot = snapshots.start(pipeline, total_segments=4, page_limit=20)
    with pytest.raises(snapshots.SnapshotError):
        snapshots.start(pipeline)  # one at a time

    done = snapshots.run_snapshot(snapshot.pk)
    assert done.status == Snapshot.Status.DONE, done.error
    assert done.items_done == 250 and done.item_count_estimate == 250 and done.percent == 100
    assert done.segments_finished == 4 and sorted(done.segments) == ["0", "1", "2", "3"]
    assert sum(s["items"] for s in done.segments.values()) == 250
    assert done.pages_done == sum(s["pages"] for s in done.segments.values()) >= 250 // 20
    assert done.consumed_rcu > 0 and done.key_names == ["pk", "sk"]
    deliveries = Delivery.objects.filter(pool=pool)
    assert deliveries.count() == done.deliveries_stored
    assert all(d.request_id.startswith(f"snapshot-{done.uid}-") for d in deliveries)
    assert sum(d.record_count for d in deliveries) == 250
    assert warehouse_counts(pool) == (250, 250, 250)

    # Running it again does nothing: it is done.
    assert snapshots.run_snapshot(snapshot.pk).pages_done == done.pages_done


def test_the_read_capacity_budget_throttles(pool, aws):
    make_table(aws, 40)
    pipeline = make_pipeline(pool, aws, TABLE)
    snapshot = snapshots.start(pipeline, total_segments=1, page_limit=10, max_rcu_per_second=10)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    began = time.monotonic()
    done = snapshots.run_snapshot(snapshot.pk, sleep=sleep)
    elapsed = time.monotonic() - began
    assert done.status == Snapshot.Status.DONE and done.items_done == 40
    # moto charges 1 RCU a page; 10 RCU/s means a tenth of a second a page, however fast moto is.
    assert done.pages_done >= 4 and done.consumed_rcu == pytest.approx(done.pages_done)
    assert len(slept) == done.pages_done
    assert sum(slept) >= done.consumed_rcu / 10 - 0.05
    assert elapsed >= done.consumed_rcu / 10 - 0.05
    assert done.throttled_seconds == pytest.approx(sum(slept), abs=0.01)


def test_an_interrupted_snapshot_resumes_without_duplicates(pool, aws, warehouse_worker, default_worker):
    from pools.aws.tasks import run_snapshot

    make_table(aws, 250)
    pipeline = make_pipeline(pool, aws, TABLE)
    snapshot = snapshots.start(pipeline, total_segments=4, page_limit=15)

    # Interrupted after a few pages (as a stopped worker leaves it).
    first = snapshots.run_snapshot(snapshot.pk, stop_after_pages=3)
    assert first.status == Snapshot.Status.PAUSED
    assert 0 < first.items_done < 250 and first.segments_finished < 4
    # A segment's last save was lost too (a crash between storing a page and saving its position):
    # it starts over, reads the same pages and stores none of them twice.
    segment, state = next((k, v) for k, v in first.segments.items() if v["pages"])
    Snapshot.objects.filter(pk=snapshot.pk).update(
        segments={
            **first.segments,
            segment: {"lek": None, "pages": 0, "items": 0, "rcu": 0, "finished": False},
        },
        items_done=first.items_done - state["items"],
        pages_done=first.pages_done - state["pages"],
        status=Snapshot.Status.RUNNING,
        heartbeat_at=timezone.now() - snapshots.STALE_AFTER - timedelta(seconds=1),  # its worker died
    )
    stored_before = Delivery.objects.filter(pool=pool).count()
    assert stored_before >= 3

    run_snapshot.delay(snapshot.pk)  # the `default` worker takes it over
    wait_for(
        lambda: Snapshot.objects.get(pk=snapshot.pk).status == Snapshot.Status.DONE,
        timeout=30,
        message="the resumed snapshot to finish",
    )
    done = Snapshot.objects.get(pk=snapshot.pk)
    assert done.runs == 2 and done.items_done == 250 and done.segments_finished == 4
    assert done.pages_done == sum(s["pages"] for s in done.segments.values())
    deliveries = Delivery.objects.filter(pool=pool)
    assert deliveries.count() == done.deliveries_stored > stored_before
    assert sum(d.record_count for d in deliveries) == 250  # the pages read again were not stored again
    assert warehouse_counts(pool) == (250, 250, 250)


def test_binary_keys_resume_from_a_saved_position(pool, aws):
    ddb = aws.client("dynamodb")
    ddb.create_table(
        TableName="blobs",
        # A binary sort key (moto's segmented Scan fails on a binary partition key).
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "id", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "id", "AttributeType": "B"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for n in range(30):
        item = {"pk": {"S": f"p{n % 7}"}, "id": {"B": bytes([n, 255 - n])}, "n": {"N": str(n)}}
        ddb.put_item(TableName="blobs", Item=item)
    key = {"id": {"B": b"\x00\xff"}}
    assert snapshot_pages.key_from_json(json.loads(json.dumps(snapshot_pages.key_to_json(key)))) == key

    snapshot = snapshots.start(make_pipeline(pool, aws, "blobs"), total_segments=2, page_limit=4)
    first = snapshots.run_snapshot(snapshot.pk, stop_after_pages=2)
    assert first.status == Snapshot.Status.PAUSED
    assert any(isinstance(s["lek"], dict) for s in first.segments.values())  # saved as JSON
    done = snapshots.run_snapshot(snapshot.pk)
    assert done.status == Snapshot.Status.DONE and done.items_done == 30
    assert sum(d.record_count for d in Delivery.objects.filter(pool=pool)) == 30


def test_beat_resumes_a_snapshot_whose_worker_stopped(pool, aws, monkeypatch):
    from pools.aws import tasks

    queued: list = []
    monkeypatch.setattr(tasks.run_snapshot, "enqueue", queued.append)  # record what beat would queue
    monkeypatch.setattr(tasks.check_pipeline, "enqueue", lambda *_: None)
    pipeline = make_pipeline(pool, aws, TABLE)
    fresh = Snapshot.objects.create(
        pipeline=pipeline, table_name=TABLE, status=Snapshot.Status.RUNNING, heartbeat_at=timezone.now()
    )
    stale = Snapshot.objects.create(
        pipeline=pipeline,
        table_name=TABLE,
        status=Snapshot.Status.RUNNING,
        heartbeat_at=timezone.now() - timedelta(minutes=5),
    )
    Snapshot.objects.create(
        pipeline=pipeline,
        table_name=TABLE,
        status=Snapshot.Status.DONE,
        heartbeat_at=timezone.now() - timedelta(minutes=5),
    )
    assert tasks.sweep_aws() == {"snapshots": 1, "pipelines": 1}
    assert queued == [stale.pk] and fresh.pk not in queued
