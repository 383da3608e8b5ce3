"""What an operator sees: /healthz, /readyz and the Prometheus /metrics, public by design (no
login), metrics behind their own token and derived from the database and Redis at scrape time."""

from __future__ import annotations

import pytest

from pools.models import DataPool, Delivery
from tests.helpers.firehose import change_record, endpoint, firehose_body, firehose_headers
from tests.helpers.metrics import TOKEN, scrape
from tests.helpers.pools import land_direct
from tests.helpers.servers import free_port, http
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def login_required_everywhere(settings):
    """The default-deny middleware the console uses: these URLs must stay public anyway."""
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.contrib.auth.middleware.LoginRequiredMiddleware"]


def test_healthz_is_public_and_needs_nothing_else(client, login_required_everywhere, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # Redis down: still alive
    reply = client.get("/healthz")
    assert reply.status_code == 200 and reply.json() == {"ok": True}


def test_readyz_says_what_is_ready(client, login_required_everywhere, warehouse_worker):
    reply = client.get("/readyz")
    assert reply.status_code == 200, reply.content
    doc = reply.json()
    assert doc["ready"] is True
    assert set(doc["checks"]) == {"web", "database", "redis", "warehouse_worker", "disk"}
    assert all(c["ok"] for c in doc["checks"].values())


def test_readyz_answers_503_without_a_warehouse_worker(client, login_required_everywhere, no_worker):
    reply = client.get("/readyz")
    assert reply.status_code == 503
    checks = reply.json()["checks"]
    assert checks["warehouse_worker"]["ok"] is False and "heartbeat" in checks["warehouse_worker"]["detail"]
    assert checks["database"]["ok"] and checks["redis"]["ok"]


def test_readyz_answers_503_with_redis_down_or_a_full_disk(client, login_required_everywhere, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    checks = client.get("/readyz").json()["checks"]
    assert checks["redis"]["ok"] is False and checks["warehouse_worker"]["ok"] is False
    settings.INGEST_MIN_FREE_BYTES = 2**62
    reply = client.get("/readyz")
    assert reply.status_code == 503 and reply.json()["checks"]["disk"]["ok"] is False


def test_metrics_need_their_token(client, login_required_everywhere, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404  # off without a token
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    reply = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert reply.status_code == 200 and reply["Content-Type"].startswith("text/plain")


def test_metrics_follow_deliveries_from_receipt_to_load(
    client, live_server, pool, warehouse_worker, settings
):
    settings.METRICS_TOKEN = TOKEN
    label = (("pool", pool.name),)
    sent_bytes = 0
    for i in range(3):
        records = [change_record(f"o{i}-a"), change_record(f"o{i}-b"), b'{"not": "a change"}']
        request_id, body = firehose_body(records)
        reply = http("POST", endpoint(live_server, pool), body, firehose_headers(request_id, pool.access_key))
        assert reply.status == 200
        sent_bytes += len(body)
    bad = http("POST", endpoint(live_server, pool), b"{", firehose_headers("r-bad", pool.access_key))
    assert bad.status == 400

    def loaded():
        m = scrape(client)
        return m if m[("shoal_pool_loaded_records_total", label)] == 6 else None

    m = wait_for(loaded, timeout=60, interval=0.5, message="the deliveries to load")
    assert m[("shoal_pool_received_records_total", label)] == 9
    assert m[("shoal_pool_received_bytes_total", label)] == sent_bytes
    assert m[("shoal_pool_quarantined_records_total", label)] == 3
    assert m[("shoal_pool_backlog_bytes", label)] == 0
    assert m[("shoal_pool_oldest_landed_age_seconds", label)] == 0
    assert m[("shoal_pool_load_errors", label)] == 0
    assert m[("shoal_up", (("check", "warehouse_worker"),))] == 1

    # The ack latency histogram, flushed to Redis in the background by the web process.
    def acked():
        m = scrape(client)
        ok = m.get(("shoal_ingest_ack_seconds_count", (("code", "200"),)), 0)
        refused = m.get(("shoal_ingest_ack_seconds_count", (("code", "400"),)), 0)
        return m if ok >= 3 and refused >= 1 else None

    m = wait_for(acked, timeout=10, interval=0.3, message="the ack latency histogram")
    inf = m[("shoal_ingest_ack_seconds_bucket", (("code", "200"), ("le", "+Inf")))]
    assert inf == m[("shoal_ingest_ack_seconds_count", (("code", "200"),))]
    assert 0 < m[("shoal_ingest_ack_seconds_sum", (("code", "200"),))] < 60


def test_metrics_show_the_backlog_and_errors(client, pool, no_worker, settings):
    from views_mv.models import MaterializedView

    settings.METRICS_TOKEN = TOKEN
    label = (("pool", pool.name),)
    for i in range(2):
        land_direct(pool, [change_record(f"w{i}")])
    waiting = sum(Delivery.objects.filter(pool=pool).values_list("body_bytes", flat=True))
    Delivery.objects.filter(pool=pool).update(
        received_at=Delivery.objects.first().received_at.replace(year=2020)
    )
    failed_id = land_direct(pool, [change_record("f")])
    Delivery.objects.filter(request_id=failed_id).update(status=Delivery.Status.FAILED, error="boom")
    target = DataPool.objects.create(name=f"{pool.name}_mv")
    MaterializedView.objects.create(
        name=f"{pool.name}_view",
        sql="SELECT 1",
        source_pool=pool,
        target_pool=target,
        status=MaterializedView.Status.FAILED,
    )

    m = scrape(client)
    assert m[("shoal_pool_backlog_bytes", label)] == waiting
    assert m[("shoal_pool_oldest_landed_age_seconds", label)] > 365 * 86400
    assert m[("shoal_pool_load_errors", label)] == 1
    assert m[("shoal_pool_failed_deliveries", label)] == 1
    assert m[("shoal_view_errors", (("view", f"{pool.name}_view"),))] == 1
    assert m[("shoal_pool_received_records_total", (("pool", target.name),))] == 0
    assert m[("shoal_up", (("check", "warehouse_worker"),))] == 0
