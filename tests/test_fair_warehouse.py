"""Users' queries and loading share the warehouse fairly: heavy user queries run on a bounded pool
of their own, limited per user, in memory and in CPU priority, while deliveries keep loading."""

from __future__ import annotations

import time

import pytest
from celery.result import AsyncResult

from console import warehouse_client
from console.tasks import run_sql
from pools.models import Delivery
from tests.helpers.firehose import change_record, endpoint, firehose_body, firehose_headers
from tests.helpers.servers import http
from tests.helpers.waiting import wait_for
from tests.helpers.workers import WorkerProcess

HEAVY = "SELECT count() FROM numbers(1e12)"
LIMIT_SECONDS = 12


@pytest.fixture
def limited_worker(no_worker):
    """A warehouse worker (in place of the suite's) whose users' queries stop after 12 s and may
    use 256 MiB."""
    worker = WorkerProcess(
        env={
            "SQL_MAX_EXECUTION_SECONDS": str(LIMIT_SECONDS),
            "SQL_MAX_MEMORY_BYTES": str(256 * 2**20),
            "SQL_MAX_QUEUED_PER_USER": "0",
            "WAREHOUSE_USER_CONCURRENCY": "4",
        }
    )
    worker.start()
    yield worker
    worker.stop()


def test_loading_keeps_its_freshness_while_four_heavy_user_queries_run(live_server, limited_worker, pool):
    # The pool's table exists (this worker started before the pool was created).
    wait_for(
        lambda: warehouse_client.call(run_sql, f"EXISTS TABLE {pool.name}").get("rows") == [[1]],
        message="the pool's table",
    )
    heavy = [
        warehouse_client.submit(run_sql, HEAVY, user) for user in ("user:1", "user:1", "user:2", "user:2")
    ]
    time.sleep(1.5)  # they are running
    assert not any(AsyncResult(task_id).ready() for task_id in heavy)

    # A third query of a user who has two running is refused at once, saying why.
    refused = AsyncResult(warehouse_client.submit(run_sql, HEAVY, "user:1")).get(timeout=10)
    assert "already have 2 queries running" in refused["error"]

    # A delivery lands and loads within seconds, while the heavy queries still run.
    request_id, body = firehose_body([change_record("fresh")])
    sent = time.monotonic()
    reply = http("POST", endpoint(live_server, pool), body, firehose_headers(request_id, pool.access_key))
    assert reply.status == 200
    wait_for(
        lambda: Delivery.objects.filter(pool=pool, status=Delivery.Status.LOADED).exists(),
        timeout=LIMIT_SECONDS,
        interval=0.1,
        message="the delivery to load while the heavy queries run",
    )
    freshness = time.monotonic() - sent
    assert freshness < 6, freshness
    assert not all(AsyncResult(task_id).ready() for task_id in heavy)

    # The heavy queries end at their execution time limit, with ClickHouse's explanation.
    for task_id in heavy:
        result = AsyncResult(task_id).get(timeout=LIMIT_SECONDS + 30)
        assert "Timeout exceeded" in result["error"] and "SQL_MAX_EXECUTION_SECONDS" in result["error"]


def test_a_user_query_is_bounded_in_memory(transactional_db, limited_worker):
    started = time.monotonic()
    result = warehouse_client.call(run_sql, "SELECT length(groupArray(number)) FROM numbers(2e8)")
    assert result["code"] == 241 and "memory limit" in result["error"].lower()
    assert time.monotonic() - started < 20
    # Spilling keeps a large GROUP BY within the same limit instead of failing it.
    result = warehouse_client.call(
        run_sql, "SELECT count() FROM (SELECT number % 3000000 AS k, count() FROM numbers(6e6) GROUP BY k)"
    )
    assert result["rows"] == [[3000000]], result


def test_the_worker_s_threads_stay_free_for_loading(transactional_db, limited_worker, pool):
    """A user's query does not hold one of the Celery threads that load: with the user pool full,
    a load-side warehouse task (creating a table) still runs at once."""
    from pools.tasks import warehouse_create_table

    heavy = [warehouse_client.submit(run_sql, HEAVY, f"user:{i}") for i in range(4)]
    time.sleep(1.0)
    started = time.monotonic()
    warehouse_client.call(warehouse_create_table, pool.pk, timeout=10)
    assert time.monotonic() - started < 5
    for task_id in heavy:
        AsyncResult(task_id).get(timeout=LIMIT_SECONDS + 30)
