"""Loading landed deliveries into the warehouse: retry-safe at every step, nothing lost when a
worker dies, and the guide's Step 4 SQL runs verbatim on the result."""

from __future__ import annotations

import json
import time

import pytest
from django.conf import settings

from console import warehouse_client
from console.tasks import run_sql
from pools import loader
from pools.loader import batch as loader_batch
from pools.models import Delivery
from pools.tasks import sweep_deliveries
from tests.helpers.firehose import change_record, endpoint, firehose_body, firehose_headers
from tests.helpers.pools import GUIDE_COLUMNS, GUIDE_STEP_4, land_direct
from tests.helpers.servers import http
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def count_rows(warehouse, pool) -> int:
    return warehouse.query(f"SELECT count() FROM {pool.table}").rows[0][0]


def test_the_guides_step_4_sql_runs_verbatim_on_a_pool_fed_through_the_endpoint(
    live_server, pool, warehouse_worker
):
    records = [
        change_record("o1", "INSERT", quantity=3),
        change_record("o1", "MODIFY", quantity=4),
        change_record("o2", "INSERT", quantity=1),
        change_record("o2", "REMOVE", quantity=1),
    ]
    request_id, body = firehose_body(records)
    reply = http("POST", endpoint(live_server, pool), body, firehose_headers(request_id, pool.access_key))
    assert reply.status == 200
    wait_for(lambda: Delivery.objects.filter(pool=pool, status="loaded").exists(), message="load")

    sql = GUIDE_STEP_4.replace("my_dynamo_orders_change_events", pool.name) + " ORDER BY order_id, quantity"
    result = warehouse_client.call(run_sql, sql)
    assert "error" not in result, result
    assert result["columns"] == GUIDE_COLUMNS
    rows = [dict(zip(result["columns"], row, strict=True)) for row in result["rows"]]
    assert [(r["order_id"], r["deleted"], r["quantity"]) for r in rows] == [
        ("o1", False, 3),
        ("o1", False, 4),
        ("o2", False, 1),
        ("o2", True, None),
    ]
    assert rows[0]["timestamp"].startswith("2024-05-08")
    assert rows[0]["taqueria"] == "La Paloma"
    assert rows[0]["total_price"] == 12.5
    assert rows[0]["new_image"]["order_id"] == {"S": "o1"}
    assert rows[3]["old_image"]["quantity"] == {"N": "0"}
    # A path naming a list attribute reads as the attribute, as DynamoDB sent it.
    sent = records[0]["dynamodb"]["NewImage"]["orderItems"]
    assert [json.loads(r["order_items"]) if r["order_items"] else None for r in rows] == [
        sent,
        sent,
        sent,
        None,
    ]


def test_a_crash_between_insert_and_bookkeeping_does_not_load_twice(
    pool, local_warehouse, no_worker, monkeypatch
):
    land_direct(pool, [change_record(f"o{i}") for i in range(50)])
    real_finish = loader_batch.finish

    def crash(*args, **kwargs):
        raise RuntimeError("worker killed after the insert")

    monkeypatch.setattr(loader_batch, "finish", crash)
    outcome = loader.load_pool(local_warehouse, pool.pk)
    assert outcome.failed == 1
    assert count_rows(local_warehouse, pool) == 50  # inserted, but not marked loaded
    delivery = Delivery.objects.get(pool=pool)
    assert delivery.status == Delivery.Status.LANDED and "killed" in delivery.error

    monkeypatch.setattr(loader_batch, "finish", real_finish)
    Delivery.objects.filter(pk=delivery.pk).update(retry_at=None)  # its back-off has passed
    outcome = loader.load_pool(local_warehouse, pool.pk)
    assert outcome.deliveries == 1 and outcome.records == 50
    assert count_rows(local_warehouse, pool) == 50  # the repeated insert wrote nothing
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.LOADED and delivery.loaded_count == 50
    assert bytes(delivery.body) == b""
    pool.refresh_from_db()
    assert pool.record_count == 50


def test_a_claim_left_by_a_dead_loader_is_swept_and_loaded(pool, local_warehouse, no_worker):
    land_direct(pool, [change_record("o1"), change_record("o2")])
    token, ids = loader.claim(pool.pk, 10)
    assert len(ids) == 1
    assert loader.claim(pool.pk, 10)[1] == []  # claimed work is not handed out twice
    # The loader dies here. A fresh claim is not stale yet; an old one is returned to the queue.
    assert loader.sweep(stale_after=60) == []
    assert loader.sweep(stale_after=0) == [pool.pk]
    outcome = loader.load_pool(local_warehouse, pool.pk)
    assert outcome.records == 2
    assert count_rows(local_warehouse, pool) == 2
    # The dead loader's late bookkeeping cannot touch what another loader finished.
    loader.finish(Delivery.objects.get(pk=ids[0]), token, 999, 0)
    assert Delivery.objects.get(pk=ids[0]).loaded_count == 2


def test_a_failed_delivery_can_be_requeued_from_the_admin(pool, local_warehouse, no_worker):
    # Only a count that does not add up holds a delivery as failed (tests/test_loader_integrity.py).
    land_direct(pool, [change_record("o1")])
    Delivery.objects.filter(pool=pool).update(status=Delivery.Status.FAILED, error="held")
    delivery = Delivery.objects.get(pool=pool)
    assert loader.requeue([delivery.pk]) == 1
    assert loader.load_pool(local_warehouse, pool.pk).records == 1


def test_a_worker_killed_mid_load_loses_nothing(pool, warehouse_worker):
    warehouse_worker.kill()
    batches, per_batch = 120, 400
    for b in range(batches):  # 0.6 MiB each: more than one batch (SHOAL_LOAD_BATCH_BYTES)
        land_direct(pool, [change_record(f"o{b}-{i}", taqueria="x" * 1200) for i in range(per_batch)])
    warehouse_worker.start()
    wait_for(
        lambda: Delivery.objects.filter(pool=pool, status="loaded").count() >= 5,
        timeout=60,
        interval=0.02,
        message="some deliveries loaded",
    )
    warehouse_worker.kill()
    loaded_before = Delivery.objects.filter(pool=pool, status="loaded").count()
    assert loaded_before < batches, "the worker finished before it could be killed"

    time.sleep(3.1)  # older than SHOAL_LOAD_STALE_SECONDS (3 s in tests)
    warehouse_worker.start()
    sweep_deliveries.apply()  # what beat runs every few seconds
    wait_for(
        lambda: Delivery.objects.filter(pool=pool, status="loaded").count() == batches,
        timeout=120,
        message="every delivery loaded",
    )
    result = warehouse_client.call(
        run_sql, f"SELECT count(), uniqExact(event_id), uniqExact(_delivery_id) FROM {pool.name}"
    )
    assert result["rows"] == [[batches * per_batch, batches * per_batch, batches]]
    pool.refresh_from_db()
    assert pool.record_count == batches * per_batch


@pytest.mark.skipif(settings.INGEST_LANDING != "files", reason="the journal exists with INGEST_LANDING=files")
def test_a_journal_file_whose_row_was_lost_is_landed_again_and_loaded(pool, local_warehouse, no_worker):
    from pools.ingest import journal

    request_id = land_direct(pool, [change_record("o1"), change_record("o2")])
    delivery = Delivery.objects.get(pool=pool)
    assert journal.path_of(delivery.body_path).exists()
    Delivery.objects.filter(pk=delivery.pk).delete()  # the row is lost (power cut), the file is not
    # A second copy of an already stored batch (its row survived) is discarded, not loaded twice.
    land_direct(pool, [change_record("o3")], request_id="kept")
    kept = Delivery.objects.get(request_id="kept")
    twin = journal.path_of(journal.write(pool.public_id, journal.path_of(kept.body_path).read_bytes()))

    assert loader.recover_journal(older_than=0) == 1
    recovered = Delivery.objects.get(pool=pool, request_id=request_id)
    assert recovered.record_count == 2 and recovered.status == Delivery.Status.LANDED
    assert not twin.exists()
    assert loader.load_pool(local_warehouse, pool.pk).records == 3
    assert count_rows(local_warehouse, pool) == 3
    assert not journal.path_of(recovered.body_path).exists()  # discarded once loaded


def test_a_loaded_delivery_whose_bookkeeping_was_lost_is_recognised(pool, local_warehouse, no_worker):
    land_direct(pool, [change_record("o1"), change_record("o2")])
    assert loader.load_pool(local_warehouse, pool.pk).records == 2
    # The load committed and its journal file was discarded, but the "loaded" update was lost.
    Delivery.objects.filter(pool=pool).update(status=Delivery.Status.LANDED)
    outcome = loader.load_pool(local_warehouse, pool.pk)
    assert (outcome.deliveries, outcome.failed) == (1, 0)
    assert Delivery.objects.get(pool=pool).status == Delivery.Status.LOADED
    assert count_rows(local_warehouse, pool) == 2


def test_a_table_dropped_behind_the_loader_s_back_is_created_again(pool, local_warehouse, no_worker):
    # The loader remembers the tables it created; a drop that ran beside that create (a test's
    # clean-up, an operator) left it inserting into a table that was gone, retrying with back-off.
    loader_batch.ensure_table(local_warehouse, pool)
    local_warehouse.execute(f"DROP TABLE {pool.table}")
    land_direct(pool, [change_record("o1"), change_record("o2")])
    outcome = loader.load_pool(local_warehouse, pool.pk)
    assert (outcome.records, outcome.failed) == (2, 0)
    assert local_warehouse.query(f"SELECT count() FROM {pool.table}").rows == [[2]]
