"""Several web processes and several `default` workers on one database, as docs/scaling.md
recommends for several hosts (CI runs this on PostgreSQL with INGEST_LANDING=database and two of
each): a delivery retried to different processes at once is stored once, and sweeps run by
several workers at once load each delivery once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from console import warehouse_client
from console.tasks import run_sql
from pools.models import Delivery
from tests.helpers.firehose import change_record, firehose_body, firehose_headers
from tests.helpers.servers import http
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_retries_to_several_web_processes_are_stored_and_loaded_once(
    web_server, pool, default_worker, warehouse_worker
):
    from pools.tasks import sweep_deliveries

    url = web_server + pool.endpoint_path()
    batches = [firehose_body([change_record(f"o{i}-{j}") for j in range(5)]) for i in range(20)]

    def send(batch):
        request_id, body = batch
        return http("POST", url, body, firehose_headers(request_id, pool.access_key)).status

    # Each delivery three times at once, as Firehose's retries after a lost answer may arrive.
    with ThreadPoolExecutor(max_workers=8) as senders:
        statuses = list(senders.map(send, [b for b in batches for _ in range(3)]))
    assert statuses == [200] * 60
    assert Delivery.objects.filter(pool=pool).count() == 20

    # Sweeps on every default worker at once (beat would send one every SHOAL_SWEEP_INTERVAL).
    for _ in range(6):
        sweep_deliveries.delay()

    def loaded() -> bool:
        return Delivery.objects.filter(pool=pool, status=Delivery.Status.LOADED).count() == 20

    wait_for(loaded, timeout=60, interval=0.5, message="every delivery to load")
    result = warehouse_client.call(run_sql, f"SELECT count(), uniqExact(event_id) FROM {pool.name}")
    assert result["rows"] == [[100, 100]]
