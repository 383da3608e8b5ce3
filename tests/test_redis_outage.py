"""Redis down while Firehose delivers: the endpoint still answers at once (loads are queued
fire-and-forget, no result backend on the hot path), and the sweep loads what landed meanwhile."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from pools.models import Delivery
from tests.helpers.firehose import assert_firehose_reply, change_record, firehose_body, firehose_headers
from tests.helpers.servers import http
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def web_on_second_redis(second_redis, transactional_db):
    from tests.helpers.servers import start_web_server, stop_web_server

    url, redis_proc = second_redis
    proc, base = start_web_server(REDIS_URL=url)
    yield base, redis_proc
    stop_web_server(proc)


def test_ingest_answers_at_once_while_redis_is_down(web_on_second_redis, pool, warehouse_worker):
    base, redis_proc = web_on_second_redis
    url = base + pool.endpoint_path()

    def send(i: int):
        request_id, body = firehose_body([change_record(f"before-{i}")])
        return request_id, http("POST", url, body, firehose_headers(request_id, pool.access_key))

    # Several at once, so that every web process has answered once (a first request pays for
    # Django's lazy start-up, which is not what this test measures).
    with ThreadPoolExecutor(max_workers=4) as senders:
        for request_id, reply in senders.map(send, range(8)):
            assert_firehose_reply(reply, request_id, 200)

    redis_proc.terminate()
    redis_proc.wait(10)
    answered = []
    for i in range(3):
        request_id, body = firehose_body([change_record(f"during-{i}")])
        started = time.monotonic()
        reply = http("POST", url, body, firehose_headers(request_id, pool.access_key))
        answered.append(time.monotonic() - started)
        assert_firehose_reply(reply, request_id, 200)
    assert max(answered) < 1.5, answered
    assert Delivery.objects.filter(pool=pool).count() == 11

    # Nothing was queued for the three (Redis was down): beat's sweep (on the suite's own Redis,
    # where the warehouse worker listens) finds them and they load.
    from pools.tasks import sweep_deliveries

    def all_loaded() -> bool:
        sweep_deliveries()
        return not Delivery.objects.filter(pool=pool).exclude(status=Delivery.Status.LOADED).exists()

    wait_for(all_loaded, timeout=60, interval=1.0, message="the sweep to load what landed")


def test_every_api_answer_during_an_outage_is_a_503_with_retry_after(web_on_second_redis, pool):
    from console.access.api import keys

    base, redis_proc = web_on_second_redis
    manage = keys.create_key("ops", "manage").key
    query = keys.create_key("reader", "query").key
    bearer = {"Authorization": f"Bearer {manage}"}
    assert http("GET", f"{base}/api/v1/pools/{pool.name}/statistics", None, bearer).status == 200

    redis_proc.terminate()
    redis_proc.wait(10)
    asks = [
        ("GET", f"/api/v1/pools/{pool.name}/statistics", None, bearer),
        ("GET", "/api/v1/pools", None, bearer),
        ("POST", "/api/v1/sql", b'{"sql": "SELECT 1"}', {"Authorization": f"Bearer {query}"}),
    ]
    for method, path, body, headers in asks:
        reply = http(method, base + path, body, {"Content-Type": "application/json", **headers})
        assert reply.status == 503, (path, reply.status, reply.body[:300])
        assert reply.headers["Content-Type"] == "application/problem+json", path
        assert int(reply.headers["Retry-After"]) > 0, path
        assert reply.json()["status"] == 503
    # ClickHouse's clients get ClickHouse's error shape.
    reply = http("POST", f"{base}/clickhouse/?user=reader&password={query}", b"SELECT 1", {})
    assert reply.status == 503 and reply.body.startswith(b"Code: "), reply.body[:300]
    assert reply.headers["X-ClickHouse-Exception-Code"] and int(reply.headers["Retry-After"]) > 0


@pytest.mark.worker
def test_what_landed_during_an_outage_loads_within_seconds_of_redis_s_return(
    web_on_second_redis, second_redis, pool, no_worker
):
    """No beat here: the warehouse worker itself reconnects at once and drains what landed."""
    import subprocess

    from tests.helpers.workers import WorkerProcess

    base, redis_proc = web_on_second_redis
    url, _ = second_redis
    worker = WorkerProcess(env={"REDIS_URL": url}, heartbeat_redis=url)
    worker.start()
    try:
        redis_proc.terminate()
        redis_proc.wait(10)
        for i in range(3):
            request_id, body = firehose_body([change_record(f"during-{i}")])
            reply = http(
                "POST", base + pool.endpoint_path(), body, firehose_headers(request_id, pool.access_key)
            )
            assert_firehose_reply(reply, request_id, 200)
        time.sleep(12)  # long enough for a client's reconnect back-off to have grown
        port = url.rsplit(":", 1)[1].split("/")[0]
        back = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        returned = time.monotonic()
        try:
            wait_for(
                lambda: (
                    not Delivery.objects.filter(pool=pool).exclude(status=Delivery.Status.LOADED).exists()
                ),
                timeout=60,
                interval=0.2,
                message="what landed during the outage to load",
            )
            # 10 s on a quiet machine (docs/operations.md); a loaded CI machine gets some slack.
            took = time.monotonic() - returned
            print(f"loaded {took:.1f} s after Redis returned")
            assert took < 20, took
            ready = http("GET", base + "/readyz")
            assert ready.status == 200, ready.body[:300]
        finally:
            back.terminate()
            back.wait(10)
    finally:
        worker.stop()
