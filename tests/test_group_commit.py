"""Group commit: one INSERT loads many landed deliveries; the batch's members are saved before the
insert, so a batch taken again after a crash is the same batch and nothing is stored twice."""

from __future__ import annotations

import threading

import pytest

from console import warehouse_client
from console.tasks import run_sql
from pools import loader
from pools.loader import batch as loader_batch
from pools.models import Delivery, LoadBatch, QuarantinedRecord
from tests.helpers.firehose import change_record, colliding_record
from tests.helpers.pools import land_direct
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def count_inserts(monkeypatch, warehouse) -> list:
    real, calls = warehouse.insert_files, []

    def insert(select, table, paths, **kwargs):
        calls.append((len(paths), kwargs["settings"]["insert_deduplication_token"]))
        return real(select, table, paths, **kwargs)

    monkeypatch.setattr(warehouse, "insert_files", insert)
    return calls


def parts(warehouse, pool) -> int:
    return warehouse.query(
        f"SELECT count() FROM system.parts WHERE active AND database = 'shoal' AND table = '{pool.name}'"
    ).rows[0][0]


def test_what_has_landed_is_loaded_by_one_insert(pool, local_warehouse, no_worker, monkeypatch):
    for b in range(30):
        land_direct(pool, [change_record(f"o{b}-{i}") for i in range(20)])
    calls = count_inserts(monkeypatch, local_warehouse)
    outcome = loader.load_pool(local_warehouse, pool.pk)
    assert (outcome.deliveries, outcome.records) == (30, 600)
    assert [n for n, _ in calls] == [30]
    assert parts(local_warehouse, pool) == 1
    assert local_warehouse.query(f"SELECT count(), uniqExact(event_id) FROM {pool.table}").rows == [
        [600, 600]
    ]
    assert set(Delivery.objects.values_list("loaded_count", flat=True)) == {20}
    assert LoadBatch.objects.count() == 1


def test_an_idle_pool_loads_a_single_delivery_at_once_under_its_own_token(
    pool, local_warehouse, no_worker, monkeypatch
):
    request_id = land_direct(pool, [change_record("o1")])
    calls = count_inserts(monkeypatch, local_warehouse)
    assert loader.load_pool(local_warehouse, pool.pk).records == 1
    assert calls == [(1, f"{pool.public_id}/{request_id}")]


def test_a_batch_is_limited_in_records_and_bytes(pool, local_warehouse, no_worker, settings):
    settings.LOAD_BATCH_RECORDS = 50
    for b in range(6):
        land_direct(pool, [change_record(f"o{b}-{i}") for i in range(20)])
    token, ids = loader.claim(pool.pk)
    assert len(ids) == 2  # 40 records; a third delivery would make 60
    settings.LOAD_BATCH_RECORDS, settings.LOAD_BATCH_BYTES = 10_000, 1
    assert len(loader.claim(pool.pk)[1]) == 1  # a delivery larger than the limit still goes alone


def test_a_batch_interrupted_after_its_insert_is_taken_again_whole_and_stored_once(
    pool, local_warehouse, no_worker, monkeypatch
):
    for b in range(8):
        records = [change_record(f"o{b}-{i}") for i in range(10)]
        if b == 5:
            records[4] = colliding_record("poison")  # one refused record: the batch is split too
        land_direct(pool, records)
    calls = count_inserts(monkeypatch, local_warehouse)
    real_finish = loader_batch._finish_batch

    def killed(*args, **kwargs):
        raise RuntimeError("worker killed after the insert")

    monkeypatch.setattr(loader_batch, "_finish_batch", killed)
    assert loader.load_pool(local_warehouse, pool.pk).failed == 8
    first_run = list(calls)
    assert {d.status for d in Delivery.objects.all()} == {"landed"}
    # More deliveries land meanwhile; they do not join the unfinished batch.
    for b in range(8, 12):
        land_direct(pool, [change_record(f"o{b}-{i}") for i in range(10)])

    monkeypatch.setattr(loader_batch, "_finish_batch", real_finish)
    Delivery.objects.update(retry_at=None)  # the back-off passes
    calls.clear()
    outcome = loader.load_pool(local_warehouse, pool.pk)
    assert (outcome.deliveries, outcome.records, outcome.quarantined, outcome.failed) == (12, 119, 1, 0)
    assert calls[: len(first_run)] == first_run  # the same inserts, under the same tokens
    assert calls[len(first_run)][0] == 4  # then the new deliveries, together
    rows = local_warehouse.query(f"SELECT count(), uniqExact(event_id) FROM {pool.table}").rows
    assert rows == [[119, 119]]
    assert QuarantinedRecord.objects.get().position == 4
    assert LoadBatch.objects.count() == 2


def test_concurrent_deliveries_with_a_worker_killed_mid_batch_are_stored_once(pool, warehouse_worker):
    senders, per_sender, per_delivery = 4, 40, 50

    def send(n: int) -> None:
        for b in range(per_sender):
            land_direct(pool, [change_record(f"s{n}-{b}-{i}") for i in range(per_delivery)])

    threads = [threading.Thread(target=send, args=(n,)) for n in range(senders)]
    for thread in threads:
        thread.start()
    wait_for(
        lambda: Delivery.objects.filter(pool=pool, status="loaded").exists(), timeout=60, message="a load"
    )
    warehouse_worker.kill()
    for thread in threads:
        thread.join()
    warehouse_worker.start()
    loader.sweep(stale_after=0)
    from pools.tasks import warehouse_load_pool

    warehouse_load_pool.delay(pool.pk)
    total = senders * per_sender
    wait_for(
        lambda: Delivery.objects.filter(pool=pool, status="loaded").count() == total,
        timeout=120,
        message="every delivery loaded",
    )
    result = warehouse_client.call(run_sql, f"SELECT count(), uniqExact(event_id) FROM {pool.name}")
    assert result["rows"] == [[total * per_delivery, total * per_delivery]]
    assert LoadBatch.objects.filter(pool=pool).count() < total  # deliveries were loaded together


def test_a_held_delivery_requeued_alone_does_not_hold_up_the_pool_or_double_its_rows(
    pool, local_warehouse, no_worker, monkeypatch
):
    for b in range(3):
        land_direct(pool, [change_record(f"o{b}-{i}") for i in range(5)])
    real_account = loader_batch._account

    def two_held(warehouse, pool_, members, refused):
        accounts, held = real_account(warehouse, pool_, members, refused)
        for member in members[:2]:  # as if their counts did not add up
            held[member.delivery.pk] = "held for the test"
            accounts.pop(member.delivery.pk)
        return accounts, held

    monkeypatch.setattr(loader_batch, "_account", two_held)
    outcome = loader.load_pool(local_warehouse, pool.pk)
    assert (outcome.deliveries, outcome.failed) == (1, 2)
    monkeypatch.undo()
    held = list(Delivery.objects.filter(status="failed").order_by("id"))
    assert len(held) == 2
    assert loader.requeue([held[0].pk]) == 1  # only one of the two is re-queued
    land_direct(pool, [change_record("later")])
    Delivery.objects.update(retry_at=None)
    outcome = loader.load_pool(local_warehouse, pool.pk)
    assert outcome.deliveries == 2  # the re-queued one, then the new one
    assert Delivery.objects.get(pk=held[0].pk).loaded_count == 5
    # The re-queued delivery's rows were stored by its batch's insert; loading it again under the
    # batch's token stores nothing twice.
    rows = local_warehouse.query(f"SELECT count(), uniqExact(event_id) FROM {pool.table}").rows
    assert rows == [[16, 16]]


def test_a_view_run_again_after_the_sources_parts_merged_copies_nothing_twice(
    pool, local_warehouse, no_worker
):
    from tests.helpers.pools import attach_view
    from views_mv import apply

    for b in range(2):  # two loads: two parts in the pool
        land_direct(pool, [change_record(f"o{b}-{i}") for i in range(10)])
        assert loader.load_pool(local_warehouse, pool.pk, batch=1).records == 10
    copy = attach_view(
        pool, "copy", f"SELECT event_id FROM {pool.name}", [["event_id", "String"]], local_warehouse
    )
    ids = sorted(Delivery.objects.values_list("id", flat=True))
    part = apply.Slice(ids, None)  # as a backfill chunk reads them
    apply.run_view(local_warehouse, copy, part, "chunk-0")
    # The worker stops before the chunk is counted. ClickHouse merges the pool's parts; read again,
    # the same rows come in other blocks, and the insert's token alone would not see the repeat.
    local_warehouse.execute(f"OPTIMIZE TABLE {pool.table} FINAL")
    apply.run_view(local_warehouse, copy, part, "chunk-0")
    rows = local_warehouse.query(f"SELECT count(), uniqExact(event_id) FROM {copy.target_pool.table}").rows
    assert rows == [[20, 20]]


def test_a_batch_being_loaded_does_not_make_the_endpoint_push_back(pool, settings, monkeypatch, no_worker):
    # no_worker: the test plays the loader (loader.claim); a running worker would claim the
    # deliveries first, at random.
    from pools.ingest import landing

    monkeypatch.setattr(landing, "_worker_alive", lambda: True)
    settings.INGEST_BACKLOG_SOFT_BYTES, settings.INGEST_BACKLOG_HARD_BYTES = 10_000, 100_000
    for b in range(4):
        land_direct(pool, [change_record(f"o{b}", taqueria="x" * 3000)])
    assert "loading this pool" in landing.backpressure(pool)  # 4 deliveries of 4 kB wait
    loader.claim(pool.pk)  # a loader takes them all as one batch
    assert landing.backpressure(pool) == ""
    settings.INGEST_BACKLOG_HARD_BYTES = 10_000  # the disk is still protected
    assert "behind" in landing.backpressure(pool)
