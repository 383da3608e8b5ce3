"""Sharing (issue 18): one key's heavy queries stall neither ingest, nor health checks, nor loading,
nor another key's small query. Real gunicorn, a real warehouse worker with small limits, Redis.

The thresholds are loose enough for a loaded CI machine and tight enough to fail on the code
before the admission point: there, the Firehose ack and /healthz waited for a free web thread
(tens of seconds) and the third key's SELECT 1 for a free warehouse thread."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from console.access.api import keys
from pools.models import Delivery
from pools.services import create_pool
from tests.helpers.firehose import change_record, firehose_body, firehose_headers
from tests.helpers.metrics import TOKEN, scrape
from tests.helpers.servers import http, start_web_server, stop_web_server
from tests.helpers.waiting import wait_for
from tests.helpers.workers import WorkerProcess

pytestmark = [pytest.mark.slow, pytest.mark.live, pytest.mark.worker]

HEAVY = "SELECT count() FROM numbers(1000000000000) WHERE sipHash64(number) = 1"
LIMIT_SECONDS = 15


@pytest.fixture
def limited_worker(no_worker):
    worker = WorkerProcess(env={"SQL_MAX_EXECUTION_SECONDS": str(LIMIT_SECONDS)})
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def small_web(transactional_db, limited_worker):
    """gunicorn with its default 16 threads a process (12 of them query slots)."""
    proc, url = start_web_server(WEB_THREADS="16")
    yield url
    stop_web_server(proc)


def api_sql(url: str, key: str, sql: str, fmt: str = "JSON"):
    body = json.dumps({"sql": sql, "format": fmt}).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return http("POST", url + "/api/v1/sql", body, headers)


def timed(call):
    started = time.monotonic()
    reply = call()
    return reply, time.monotonic() - started


def test_heavy_api_queries_stall_neither_ingest_nor_health_nor_another_key(
    small_web, limited_worker, client, settings
):
    url = small_web
    target = create_pool("isolation_target")
    other = create_pool("isolation_other")
    heavy_key = keys.create_key("heavy", "query", pools=[other.name]).key
    two = [keys.create_key(f"heavy-{i}", "query", pools=[other.name]).key for i in range(2)]
    small_key = keys.create_key("small", "query", pools=[other.name]).key
    wait_for(lambda: api_sql(url, small_key, "SELECT 1").status == 200, message="the API answers")

    stop = threading.Event()
    statuses: list[int] = []

    def hammer(key: str) -> None:
        while not stop.is_set():
            reply = api_sql(url, key, HEAVY)
            statuses.append(reply.status)
            if reply.status == 429:
                assert int(reply.headers["Retry-After"]) >= 1
                time.sleep(0.5)

    senders = [heavy_key] * 20 + two * 2
    with ThreadPoolExecutor(len(senders)) as pool:
        futures = [pool.submit(hammer, key) for key in senders]
        try:
            time.sleep(3)  # the heavy queries are running, the rest are refused and retried
            health, health_s = timed(lambda: http("GET", url + "/healthz"))
            assert health.status == 200 and health_s < 1.0, health_s

            request_id, body = firehose_body([change_record("fresh")])
            ack, ack_s = timed(
                lambda: http(
                    "POST",
                    url + target.endpoint_path(),
                    body,
                    firehose_headers(request_id, target.access_key),
                )
            )
            assert ack.status == 200 and ack_s < 2.0, ack_s
            landed = time.monotonic()
            wait_for(
                lambda: Delivery.objects.filter(pool=target, status=Delivery.Status.LOADED).exists(),
                timeout=LIMIT_SECONDS,
                interval=0.1,
                message="the delivery to load while the heavy queries run",
            )
            assert time.monotonic() - landed < 4.0

            small, small_s = timed(lambda: api_sql(url, small_key, "SELECT 1"))
            assert small.status == 200 and small_s < 3.0, (small.status, small_s, small.body[:300])
        finally:
            stop.set()
            for future in futures:
                future.result(timeout=LIMIT_SECONDS + 60)
    # One key's surplus was refused with 429, not queued behind its own heavy queries, and
    # /metrics says so.
    assert 429 in statuses
    settings.METRICS_TOKEN = TOKEN
    figures = scrape(client)
    assert figures[("shoal_queries_refused_total", (("kind", "key"),))] > 0
    assert figures[("shoal_queries_admitted_total", (("kind", "key"),))] >= 6
