"""What a 200 promises, tried with the records real DynamoDB tables produce: attribute names with
dots, records the warehouse refuses, envelopes Python and ClickHouse could read differently,
faults that pass. Every record ends once in the pool or in quarantine with its reason."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from pools import loader
from pools.models import Delivery, QuarantinedRecord
from tests.helpers.firehose import change_record, colliding_record
from tests.helpers.pools import land_direct

pytestmark = pytest.mark.django_db(transaction=True)


def dotted_record(order_id: str) -> dict:
    """A legal DynamoDB item whose attribute names collide once dots are read as nesting."""
    record = change_record(order_id)
    image = record["dynamodb"]["NewImage"]
    image["x.M.S"] = {"S": "flat"}
    image["x"] = {"M": {"S": {"S": "nested"}}}
    image["user.name"] = {"S": "dotted"}
    image["user"] = {"M": {"name": {"S": "nested"}}}
    return record


def rows_of(warehouse, pool, columns: str = "count()", tail: str = "") -> list:
    return warehouse.query(f"SELECT {columns} FROM {pool.table} {tail}", readonly=True).rows


def test_it_keeps_attribute_names_with_dots_apart_and_exact(pool, local_warehouse, no_worker):
    records = [dotted_record("o1"), change_record("o2")]
    land_direct(pool, records)
    outcome = loader.load_pool(local_warehouse, pool.pk)
    assert (outcome.records, outcome.quarantined, outcome.failed) == (2, 0, 0)

    rows = rows_of(
        local_warehouse,
        pool,
        "keys.order_id.S, new_image, new_image.`user%2Ename`.S, new_image.user.M.name.S, "
        "new_image.`x%2EM%2ES`.S, new_image.x.M.S.S",
        "ORDER BY 1",
    )
    assert rows[0][0] == "o1"
    # The image comes back as DynamoDB sent it: same attribute names, same values.
    assert rows[0][1] == records[0]["dynamodb"]["NewImage"]
    assert rows[0][2:] == ["dotted", "nested", "flat", "nested"]
    assert rows[1][1] == records[1]["dynamodb"]["NewImage"]
    delivery = Delivery.objects.get(pool=pool)
    assert (delivery.status, delivery.loaded_count) == (Delivery.Status.LOADED, 2)


def not_a_change_record() -> bytes:
    return b'{"hello": "world"}'


def test_a_record_the_warehouse_refuses_is_quarantined_and_its_neighbours_load_once(
    pool, local_warehouse, no_worker, monkeypatch
):
    records = [change_record(f"o{i}") for i in range(10)]
    records[3] = colliding_record("bad3")
    records[7] = colliding_record("bad7")
    records[8] = not_a_change_record()
    land_direct(pool, records)
    delivery = Delivery.objects.get(pool=pool)

    # The loader dies after a few of the inserts that isolate the bad records.
    real_insert, calls = local_warehouse.insert_files, []

    def dies_on_the_fourth(*args, **kwargs):
        calls.append(kwargs["settings"]["insert_deduplication_token"])
        if len(calls) == 4:
            raise RuntimeError("worker killed")
        return real_insert(*args, **kwargs)

    monkeypatch.setattr(local_warehouse, "insert_files", dies_on_the_fourth)
    assert loader.load_pool(local_warehouse, pool.pk).failed == 1
    Delivery.objects.filter(pk=delivery.pk).update(retry_at=None)  # its back-off has passed
    outcome = loader.load_pool(local_warehouse, pool.pk)
    assert (outcome.records, outcome.quarantined, outcome.failed) == (7, 3, 0)

    ids = rows_of(local_warehouse, pool, "keys.order_id.S", "ORDER BY 1")
    assert ids == [[f"o{i}"] for i in (0, 1, 2, 4, 5, 6, 9)]  # each once
    delivery.refresh_from_db()
    assert (delivery.status, delivery.loaded_count, delivery.quarantined_count) == ("loaded", 7, 3)
    quarantined = {q.position: q for q in QuarantinedRecord.objects.filter(delivery=delivery)}
    assert sorted(quarantined) == [3, 7, 8]
    assert "Duplicate path" in quarantined[3].reason and "Duplicate path" in quarantined[7].reason
    assert json.loads(base64.b64decode(quarantined[7].data))["dynamodb"]["Keys"]["order_id"] == {"S": "bad7"}
    assert "eventName" in quarantined[8].reason
    pool.refresh_from_db()
    assert (pool.record_count, pool.quarantined_count) == (7, 3)


def test_counts_come_from_the_pool_even_with_a_trigger_attached(pool, local_warehouse, no_worker):
    # A ClickHouse trigger (as older versions attached views) makes rows_written count its rows.
    target = f"{pool.name}_ids"
    loader.ensure_table(local_warehouse, pool)
    local_warehouse.execute(f"CREATE TABLE {target} (order_id String) ENGINE = MergeTree ORDER BY order_id")
    local_warehouse.execute(
        f"CREATE MATERIALIZED VIEW _mv_{target} TO {target} AS "
        f"SELECT toString(keys.order_id.S) AS order_id FROM {pool.name}"
    )
    try:
        land_direct(pool, [change_record("o1"), not_a_change_record(), change_record("o2"), b"[1]"])
        outcome = loader.load_pool(local_warehouse, pool.pk)
        delivery = Delivery.objects.get(pool=pool)
        assert (delivery.loaded_count, delivery.quarantined_count) == (2, 2)
        assert (outcome.records, outcome.quarantined) == (2, 2)
        assert QuarantinedRecord.objects.filter(delivery=delivery).count() == 2
        assert local_warehouse.query(f"SELECT count() FROM {target}").rows == [[2]]
    finally:
        local_warehouse.execute(f"DROP VIEW IF EXISTS _mv_{target}")
        local_warehouse.execute(f"DROP TABLE IF EXISTS {target}")


def test_an_older_trigger_that_refuses_a_record_does_not_fail_the_delivery_or_double_the_pool(
    pool, local_warehouse, no_worker
):
    # Until a worker restart drops it, a trigger fails the insert after the pool stored the rows.
    target = f"{pool.name}_qty"
    loader.ensure_table(local_warehouse, pool)
    local_warehouse.execute(
        f"CREATE TABLE {target} (order_id String, qty Int32) ENGINE = MergeTree ORDER BY order_id"
    )
    local_warehouse.execute(
        f"CREATE MATERIALIZED VIEW _mv_{target} TO {target} AS "
        f"SELECT toString(keys.order_id.S) AS order_id, toInt32(new_image.quantity.N) AS qty FROM {pool.name}"
    )
    try:
        bad = change_record("bad")
        bad["dynamodb"]["NewImage"]["quantity"] = {"N": "abc"}
        land_direct(pool, [change_record("o1"), bad, change_record("o2")])
        outcome = loader.load_pool(local_warehouse, pool.pk)
        assert (outcome.records, outcome.failed) == (3, 0)
        delivery = Delivery.objects.get(pool=pool)
        assert delivery.status == Delivery.Status.LOADED and "Materialized View" in delivery.error
        assert rows_of(local_warehouse, pool) == [[3]]
    finally:
        local_warehouse.execute(f"DROP VIEW IF EXISTS _mv_{target}")
        local_warehouse.execute(f"DROP TABLE IF EXISTS {target}")


def test_a_body_the_warehouse_reads_differently_is_held_for_investigation(pool, local_warehouse, no_worker):
    # Landed before the envelope check was strict: Python counted one record, ClickHouse none.
    from pools.ingest import journal

    body = b'{"requestId":"r-nan","records":[{"data":"e30="}],"timestamp":NaN}'
    Delivery.objects.create(
        pool=pool,
        request_id="r-nan",
        record_count=1,
        body_bytes=len(body),
        body_path=journal.write(pool.public_id, body),
    )
    outcome = loader.load_pool(local_warehouse, pool.pk)
    assert (outcome.deliveries, outcome.failed) == (0, 1)
    delivery = Delivery.objects.get(pool=pool)
    assert delivery.status == Delivery.Status.FAILED
    assert "1 records were acknowledged, but 0 are in the pool and 0 in quarantine" in delivery.error
    assert journal.path_of(delivery.body_path).exists()


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("Cannot reserve 1.00 MiB, not enough space", 243),
        ("Too many parts (300) in all partitions in total", 252),
        ("Memory limit (total) exceeded", 241),
        ("Connection refused", None),
    ],
)
def test_a_passing_fault_is_retried_with_back_off_for_as_long_as_it_takes(
    pool, local_warehouse, no_worker, monkeypatch, message, code
):
    from console.warehouse import WarehouseError

    land_direct(pool, [change_record("o1"), change_record("o2")])

    def full(*args, **kwargs):
        raise WarehouseError(message, code)

    monkeypatch.setattr(local_warehouse, "insert_files", full)
    for _ in range(15):  # more attempts than a load used to get before it was failed for good
        assert loader.load_pool(local_warehouse, pool.pk).failed == 1
        delivery = Delivery.objects.get(pool=pool)
        assert delivery.status == Delivery.Status.LANDED and message in delivery.error
        assert delivery.retry_at > delivery.received_at
        assert loader.claim(pool.pk, 10)[1] == []  # it waits for its back-off
        assert loader.sweep() == []
        Delivery.objects.filter(pool=pool).update(retry_at=None)  # the back-off passes
    assert delivery.retry_at - timezone.now() > timedelta(minutes=4)  # it grew, up to 5 minutes
    assert not QuarantinedRecord.objects.exists()  # a fault of the moment quarantines nothing

    monkeypatch.undo()  # the fault passes (space freed, warehouse back)
    assert loader.load_pool(local_warehouse, pool.pk).records == 2
    delivery.refresh_from_db()
    assert (delivery.status, delivery.error, delivery.retry_at) == ("loaded", "", None)
