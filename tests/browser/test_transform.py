"""Fewer clicks to the guide's result (issue 20): from the first console page of the demo (its
AWS connection, `orders` table and empty pool, as `make demo` seeds them) to the first
transformed row, counting every click: connect the table, put an order, "Transform into an
entity pool", Create."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from pools.models import DataPool
from tests.browser.conftest import login, screenshot
from tests.browser.test_aws_pipeline import start_relay
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MOST_CLICKS = 12


@pytest.fixture
def no_orders_tables(warehouse_worker):
    from console import warehouse_client
    from pools.aws import sandbox
    from pools.tasks import warehouse_drop_table

    names = ("dynamodb_orders", sandbox.DEMO_POOL)
    for name in names:
        warehouse_client.call(warehouse_drop_table, 0, name)
    yield
    for name in names:
        warehouse_client.call(warehouse_drop_table, 0, name)


def test_from_the_first_page_to_the_first_transformed_row(
    page, live_server, user, moto, default_worker, no_orders_tables
):
    from pools.aws import sandbox
    from pools.aws.clients import connect
    from pools.services import create_pool

    # What `make demo` seeds (pools/aws/management/commands/demo_relay.py).
    sandbox.create_orders_table(connect(sandbox.ensure_connection(moto.url)))
    pool = create_pool(sandbox.DEMO_POOL, description="Taqueria orders from the sandbox's DynamoDB table")
    relay = start_relay(live_server.url)
    clicks = []

    def click(selector: str) -> None:
        clicks.append(selector)
        page.click(selector)

    try:
        login(page, live_server)
        page.wait_for_url("**/pools/")  # the first console page
        click(f"a:has-text('{pool.name}')")
        click("a:has-text('Connect DynamoDB')")
        click("table.aws-table-pick tr:has-text('orders') input[type=radio]")
        click("button:has-text('Continue')")
        expect(page.locator("input[name=mode][value=firehose]")).to_be_checked()  # the guide's path
        click("button:has-text('Continue')")
        expect(page.locator("input[name=new_name]")).to_have_value("orders-cdc")  # Kinesis: the defaults
        click("button:has-text('Continue')")
        page.locator("input[name=endpoint_url]").wait_for()  # Firehose: the defaults
        click("button:has-text('Continue')")
        page.locator("ol.aws-plan").wait_for()  # the review
        click("button:has-text('Create pipeline')")
        page.locator("h1 .badge-active").wait_for(timeout=30_000)
        click("button:has-text('Put a sample order')")
        wait_for(lambda: DataPool.objects.get(pk=pool.pk).record_count > 0, timeout=60, message="the order")
        click(f"a:has-text('{pool.name}') >> nth=0")
        click("a:has-text('Transform into an entity pool')")
        expect(page.locator("pre.code")).to_contain_text("keys.order_id.S AS order_id")
        expect(page.locator("table.test-rows")).to_contain_text("order-")  # the Test, shown
        expect(page.locator("dl.confirm")).to_contain_text("REPLACING_MERGE_TREE")
        expect(page.locator("input[name=name]")).to_have_value("flattened_dynamodb_orders_materialized_view")
        screenshot(page, "transform-1-confirm")
        click("button:has-text('Create Materialized View')")
        rows = page.locator(".mv-first-rows table.preview tbody tr")
        expect(rows).to_have_count(1, timeout=30_000)
        expect(rows).to_contain_text("order-")
        screenshot(page, "transform-2-first-row")
    except Exception:
        print(page.url, page.inner_text("main")[:3000])
        raise
    finally:
        relay.set()
    assert len(clicks) <= MOST_CLICKS, clicks
    print(f"{len(clicks)} clicks from the first console page to the first transformed row")
