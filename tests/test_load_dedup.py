"""A batch's insert reads and parses its bodies with several threads (SHOAL_LOAD_READ_THREADS) and
still writes one block, so a batch inserted again after a crash, read with other threads in other
chunks, is recognised by its token and stored once."""

from __future__ import annotations

import pytest

from pools import loader
from pools.loader import batch as loader_batch
from pools.models import Delivery
from tests.helpers.firehose import change_record
from tests.helpers.pools import land_direct

pytestmark = pytest.mark.django_db(transaction=True)


def reading(real, threads: int, block_rows: int):
    def settings_for(token: str) -> dict:
        return {**real(token), "max_threads": threads, "max_block_size": block_rows}

    return settings_for


@pytest.mark.parametrize(
    ("first", "again"), [((1, 65536), (2, 97)), ((2, 97), (4, 1000)), ((4, 50), (1, 65536))]
)
def test_a_batch_read_again_with_other_threads_is_stored_once(
    pool, local_warehouse, no_worker, monkeypatch, first, again
):
    for b in range(12):
        land_direct(pool, [change_record(f"o{b}-{i}") for i in range(300)])
    real_settings, real_finish = loader_batch.insert_settings, loader_batch._finish_batch

    def killed(*args, **kwargs):
        raise RuntimeError("worker killed after the insert")

    monkeypatch.setattr(loader_batch, "insert_settings", reading(real_settings, *first))
    monkeypatch.setattr(loader_batch, "_finish_batch", killed)
    assert loader.load_pool(local_warehouse, pool.pk).failed == 12

    monkeypatch.setattr(loader_batch, "insert_settings", reading(real_settings, *again))
    monkeypatch.setattr(loader_batch, "_finish_batch", real_finish)
    Delivery.objects.update(retry_at=None)  # the back-off passes
    assert loader.load_pool(local_warehouse, pool.pk).records == 3600
    rows = local_warehouse.query(f"SELECT count(), uniqExact(event_id) FROM {pool.table}").rows
    assert rows == [[3600, 3600]]


def test_the_loader_reads_with_the_configured_threads(settings):
    settings.LOAD_READ_THREADS = 3
    chosen = loader_batch.insert_settings("t")
    assert chosen["max_threads"] == 3 and chosen["max_insert_threads"] == 1
    assert chosen["insert_deduplication_token"] == "t"
