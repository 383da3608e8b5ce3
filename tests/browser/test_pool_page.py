"""A user signs in, opens a Data Pool that Firehose has fed, and previews its data."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login, screenshot
from tests.helpers.firehose import change_record, endpoint, firehose_body, firehose_headers
from tests.helpers.pools import fresh_pool
from tests.helpers.servers import http
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_preview_data_shows_rows_delivered_through_the_endpoint(page, live_server, user, warehouse_worker):

    pool = fresh_pool("my_dynamo_orders_change_events", description="Taqueria orders from DynamoDB")
    records = [
        change_record("order-1001", "INSERT", quantity=3, taqueria="El Farolito"),
        change_record("order-1002", "INSERT", quantity=1, taqueria="La Taqueria"),
        change_record("order-1001", "MODIFY", quantity=4, taqueria="El Farolito"),
        change_record("order-1002", "REMOVE", quantity=1, taqueria="La Taqueria"),
    ]
    request_id, body = firehose_body(records)
    assert (
        http("POST", endpoint(live_server, pool), body, firehose_headers(request_id, pool.access_key)).status
        == 200
    )
    wait_for(lambda: pool.deliveries.filter(status="loaded").exists(), message="load")

    login(page, live_server)
    page.click("text=my_dynamo_orders_change_events")
    assert page.locator("#endpoint-url").inner_text() == pool.endpoint_url()
    page.click("a.button:has-text('Preview Data')")
    table = page.locator("table.preview")
    table.wait_for()
    assert table.locator("tbody tr").count() == 4
    assert "order-1002" in table.inner_text() and "REMOVE" in table.inner_text()
    modify = table.locator("tbody tr", has_text="MODIFY")
    modify.locator("details.json summary").nth(1).click()  # its new_image expands, pretty-printed
    assert '"S": "order-' in page.locator("details.json[open] pre").first.inner_text()
    page.locator(".scroll").evaluate("e => { e.scrollLeft = 0 }")
    screenshot(page, "pool-preview")

    # "Send test events" posts a dozen records through the pool's own endpoint.
    page.click("button:has-text('Send test events')")
    assert "Sent 12 test change records" in page.locator(".flash").inner_text()
    wait_for(lambda: pool.deliveries.filter(status="loaded").count() == 2, message="test events loaded")
    page.reload()
    assert page.locator(".stat-value").first.inner_text() == "16"
    screenshot(page, "pool-page")


def test_the_cards_and_deliveries_follow_a_delivery_while_the_page_is_open(
    page, live_server, user, warehouse_worker
):
    """The page said "Live" but never refreshed once idle: a delivery 45 s later went unseen."""
    from pools.services import create_pool
    from tests.helpers.pools import land_direct

    pool = create_pool("live_cards")
    login(page, live_server)
    page.goto(live_server.url + pool.get_absolute_url())
    expect(page.locator("#pool-stats")).to_contain_text("never")  # no delivery yet
    land_direct(pool, [change_record(f"o{i}") for i in range(7)])
    expect(page.locator("#pool-stats .stat-value").first).to_have_text("7", timeout=20_000)
    expect(page.locator("#pool-deliveries")).to_contain_text("Loaded", timeout=20_000)


def test_a_hidden_tab_stops_polling_and_asks_again_when_shown(page, live_server, user, warehouse_worker):
    """A page left open in a background tab asked the server every few seconds for ever; now its
    polling rests while the tab is hidden and asks at once when the tab is shown again."""
    import time

    from pools.services import create_pool

    pool = create_pool("hidden_tab")
    login(page, live_server)
    page.goto(live_server.url + pool.get_absolute_url())
    expect(page.locator("#pool-stats")).to_contain_text("never")
    polled: list[float] = []
    page.on("request", lambda r: polled.append(time.monotonic()) if "part=live" in r.url else None)

    def tab(hidden: bool) -> None:
        page.evaluate(
            """(hidden) => {
                Object.defineProperty(document, "hidden", {configurable: true, get: () => hidden});
                Object.defineProperty(document, "visibilityState",
                    {configurable: true, get: () => (hidden ? "hidden" : "visible")});
                document.dispatchEvent(new Event("visibilitychange"));
            }""",
            hidden,
        )

    tab(hidden=True)
    page.wait_for_timeout(6_500)  # the idle poll is every 5 s
    assert polled == []
    shown = time.monotonic()
    tab(hidden=False)
    page.wait_for_timeout(1_000)
    assert polled and polled[0] - shown < 1.0  # asked at once, not at the next tick
