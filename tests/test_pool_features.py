"""Pool page features: ingestion chart, Send test events, pool statistics, delete."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from console import warehouse_client
from console.tasks import run_sql
from pools import charts
from pools import views as pool_views
from pools.ingest import journal
from pools.models import DataPool, Delivery
from pools.tasks import warehouse_pool_stats
from tests.helpers.firehose import change_record, endpoint, firehose_body, firehose_headers
from tests.helpers.pools import land_direct
from tests.helpers.servers import http
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_ingestion_series_sums_records_per_bucket(pool):
    now = timezone.now().replace(second=30, microsecond=0)
    for minutes_ago, records in [(1, 10), (2, 5), (40, 7), (500, 99)]:
        Delivery.objects.create(
            pool=pool,
            request_id=f"r{minutes_ago}",
            record_count=records,
            received_at=now - timedelta(minutes=minutes_ago),
        )
    series = charts.ingestion_series(pool.pk, hours=3, minutes_per_bucket=5, now=now)
    assert len(series) == 36
    assert sum(b.records for b in series) == 22  # 500 minutes ago is outside the window
    assert series[-1].records + series[-2].records == 15
    svg = charts.svg_bars(series)
    assert svg.count("<rect") == 36 and "peak" in svg


def test_send_test_events_goes_through_the_real_endpoint(admin_client, live_server, pool, warehouse_worker):
    host = live_server.url.removeprefix("http://")
    reply = admin_client.post(
        reverse("pools:send_test_events", args=[pool.name]), HTTP_HOST=host, follow=True
    )
    assert "Sent 12 test change records" in reply.content.decode()
    delivery = Delivery.objects.get(pool=pool)
    assert delivery.record_count == 12 and delivery.source_arn.endswith("shoal-test-events")
    wait_for(lambda: DataPool.objects.get(pk=pool.pk).record_count == 12, message="test events loaded")
    result = warehouse_client.call(run_sql, f"SELECT count(), any(table_name) FROM {pool.name}")
    assert result["rows"] == [[12, "orders"]]


def test_send_test_events_reports_a_refusal(admin_client, live_server, pool, settings, no_worker):
    # No worker: the delivery landed below stays a backlog (a running worker could load it before
    # the test events are sent, and the endpoint would then accept them).
    settings.INGEST_BACKLOG_HARD_BYTES = 1  # the endpoint will answer 503
    land_direct(pool, [change_record("o1")])
    host = live_server.url.removeprefix("http://")
    reply = admin_client.post(
        reverse("pools:send_test_events", args=[pool.name]), HTTP_HOST=host, follow=True
    )
    assert "Sending test events failed" in reply.content.decode() and "503" in reply.content.decode()


def test_pool_statistics_come_from_the_warehouse(pool, warehouse_worker):
    land_direct(pool, [change_record(f"o{i}") for i in range(200)])
    wait_for(lambda: DataPool.objects.get(pk=pool.pk).record_count == 200, message="load")
    warehouse_client.call(warehouse_pool_stats)
    pool.refresh_from_db()
    assert pool.disk_bytes > 1000 and pool.stats_at is not None


def test_the_pool_page_shows_chart_schema_and_settings(admin_client, pool):
    land_direct(pool, [change_record("o1"), change_record("o2")])
    page = admin_client.get(reverse("pools:detail", args=[pool.name])).content.decode()
    assert '<svg class="chart"' in page
    assert "new_image" in page and "ApproximateCreationDateTime" in page
    assert pool.sorting_key in page and "Send test events" in page


def test_deleting_needs_the_name_typed_and_removes_table_and_data(
    admin_client, live_server, pool, warehouse_worker
):
    land_direct(pool, [change_record("o1")])
    wait_for(lambda: DataPool.objects.get(pk=pool.pk).record_count == 1, message="load")
    url = reverse("pools:delete", args=[pool.name])
    assert "Type" in admin_client.get(url).content.decode()
    wrong = admin_client.post(url, {"confirm_name": "something-else"})
    assert "exactly" in wrong.content.decode()
    assert DataPool.objects.get(pk=pool.pk).status != DataPool.Status.DELETING

    admin_client.post(url, {"confirm_name": pool.name})
    request_id, body = firehose_body([change_record("late")])
    reply = http("POST", endpoint(live_server, pool), body, firehose_headers(request_id, pool.access_key))
    assert reply.status in (503, 404)  # being deleted, or already gone
    wait_for(lambda: not DataPool.objects.filter(pk=pool.pk).exists(), message="pool deleted")
    assert not Delivery.objects.filter(pool_id=pool.pk).exists()
    assert not (journal.folder() / pool.public_id).exists()
    result = warehouse_client.call(run_sql, f"EXISTS TABLE {pool.name}")
    assert result["rows"] == [[0]]
    reply = http("POST", endpoint(live_server, pool), body, firehose_headers(request_id, pool.access_key))
    assert reply.status == 404


def live_part(admin_client, pool) -> str:
    return admin_client.get(
        reverse("pools:detail", args=[pool.name]) + "?part=live", HTTP_HX_REQUEST="true"
    ).content.decode()


def test_after_send_test_events_the_cards_refresh_with_the_deliveries(
    admin_client, live_server, pool, warehouse_worker
):
    host = live_server.url.removeprefix("http://")
    page = admin_client.post(
        reverse("pools:send_test_events", args=[pool.name]), HTTP_HOST=host, follow=True
    ).content.decode()
    assert "Sending test events failed" not in page
    # Whatever the load's progress at the first render, the cards poll until it is reflected.
    loaded_already = Delivery.objects.filter(pool=pool, status="loaded").exists()
    assert 'id="pool-stats" hx-get' in page and ("every 1500ms" in page or loaded_already)

    def settled():
        part = live_part(admin_client, pool)
        return part if 'hx-trigger="every 5s, shoal:shown from:document"' in part else None

    # Once the load is reflected, the cards go on polling, slowly, for the next delivery.
    part = wait_for(settled, timeout=30, message="cards back to their idle poll")
    cards = part[: part.index('id="pool-deliveries"')]
    assert '>12</div><div class="stat-label">records' in cards
    assert "never" not in cards and "—" not in cards and ">0\xa0bytes<" not in cards
    assert 'hx-swap-oob="true"' in part and "Loaded" in part
    pool.refresh_from_db()
    assert pool.disk_bytes > 0 and pool.stats_at >= pool.deliveries.get().loaded_at


@pytest.mark.django_db
def test_cards_that_stop_refreshing_show_what_the_deliveries_left(monkeypatch):
    """The page read the pool, then its load finished, then no warehouse worker could refresh the
    statistics: the cards stop polling, so they must show the counts the finished load left."""
    pool = DataPool.objects.create(name="cards_after_load")
    read_before = DataPool.objects.get(pk=pool.pk)
    Delivery.objects.create(
        pool=pool,
        request_id="r1",
        status="loaded",
        record_count=12,
        loaded_count=12,
        loaded_at=timezone.now(),
    )
    DataPool.objects.filter(pk=pool.pk).update(record_count=12, last_delivery_at=timezone.now())

    def unavailable(*args):
        raise warehouse_client.WarehouseUnavailable("no worker")

    monkeypatch.setattr(warehouse_client, "submit", unavailable)
    live = pool_views._live(read_before)
    assert not live["refreshing"]
    assert read_before.record_count == 12


def test_a_never_rotated_key_and_an_empty_chart_say_so(admin_client, pool):
    page = admin_client.get(reverse("pools:detail", args=[pool.name])).content.decode()
    assert "never rotated" in page and "rotated 0" not in page
    assert "no records received in this period" in page and "peak" not in page
    admin_client.post(reverse("pools:rotate_key", args=[pool.name]))
    DataPool.objects.filter(pk=pool.pk).update(access_key_rotated_at=timezone.now() + timedelta(seconds=5))
    page = admin_client.get(reverse("pools:detail", args=[pool.name])).content.decode()
    assert "never rotated" not in page and "rotated " in page
    land_direct(pool, [change_record("o1")])
    page = admin_client.get(reverse("pools:detail", args=[pool.name])).content.decode()
    assert "peak 1 record per interval" in page


@pytest.mark.django_db
def test_the_https_warning_is_not_shown_for_a_pipeline_the_sandbox_relay_delivers(
    admin_client, pool, settings
):
    from types import SimpleNamespace

    from pools.aws.models import SandboxRelay
    from tests.helpers.aws import make_connection, make_pipeline

    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    url = reverse("pools:detail", args=[pool.name])
    assert "Firehose needs https:443" in admin_client.get(url).content.decode()

    connection = make_connection("http://127.0.0.1:5", name="sandbox")
    pipeline = make_pipeline(pool, SimpleNamespace(connection=connection), "orders")
    assert "Firehose needs https:443" not in admin_client.get(url).content.decode()  # the relay delivers

    SandboxRelay.objects.filter(pipeline=pipeline).update(emulated=False)  # a real Firehose
    assert "Firehose needs https:443" in admin_client.get(url).content.decode()
