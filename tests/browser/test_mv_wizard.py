"""A user turns the raw change events into an entity table with the guide's Step 4 SQL."""

from __future__ import annotations

import pytest

from tests.browser.conftest import login, screenshot
from tests.helpers.firehose import change_record
from tests.helpers.pools import GUIDE_STEP_4, fresh_pool, land_direct
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def cleanup_warehouse(warehouse_worker):
    """The view and its target table outlive the test's database; remove them afterwards so that
    they do not fire on later tests' pools of the same name."""
    yield
    from console import warehouse_client
    from pools.tasks import warehouse_drop_table

    for name in ("_mv_flattened_dynamodb_orders_materialized_view", "dynamodb_orders"):
        warehouse_client.call(warehouse_drop_table, 0, name)


def test_the_guides_step_4_in_the_browser(page, live_server, user, warehouse_worker, cleanup_warehouse):
    from views_mv.models import Backfill

    pool = fresh_pool("my_dynamo_orders_change_events")
    land_direct(
        pool,
        [
            change_record("order-1", "INSERT", quantity=2, taqueria="El Farolito"),
            change_record("order-2", "INSERT", quantity=1, taqueria="La Taqueria"),
        ],
    )
    land_direct(
        pool,
        [
            change_record("order-1", "MODIFY", quantity=5, taqueria="El Farolito"),
            change_record("order-2", "REMOVE", quantity=1, taqueria="La Taqueria"),
        ],
    )
    wait_for(lambda: pool.deliveries.filter(status="loaded").count() == 2, message="loads")

    from console import warehouse_client
    from pools.tasks import warehouse_drop_table

    warehouse_client.call(warehouse_drop_table, 0, "dynamodb_orders")
    login(page, live_server)
    page.click("nav >> text=Materialized Views")
    page.click("text=Create Materialized View")
    page.fill("textarea[name=sql]", GUIDE_STEP_4)
    page.click("button[value=test]")
    page.wait_for_selector("text=Output of the query")
    assert "Nullable(Int32)" in page.inner_text("#mv-wizard")
    screenshot(page, "mv-1-sql")
    page.click("button[value=next]")

    page.wait_for_selector("input[name=new_name]")
    page.fill("input[name=new_name]", "dynamodb_orders")
    screenshot(page, "mv-2-destination")
    page.click("button:has-text('Continue')")

    page.wait_for_selector("text=Which columns uniquely identify your records?")
    page.check("input[name=mode][value=mutable]")
    page.check("input[name=unique][value=order_id]")
    page.check("input[name=time_column][value=timestamp]")
    screenshot(page, "mv-3-table")
    page.click("button:has-text('Continue')")

    page.wait_for_selector("text=Confirm and create")
    confirm = page.inner_text("dl.confirm")
    assert "REPLACING_MERGE_TREE" in confirm and "order_id" in confirm and "timestamp" in confirm
    page.fill("input[name=name]", "flattened_dynamodb_orders_materialized_view")
    screenshot(page, "mv-4-confirm")
    page.click("button:has-text('Create Materialized View')")

    page.wait_for_selector("h1:has-text('flattened_dynamodb_orders_materialized_view')")
    from views_mv.models import MaterializedView

    # What the confirm page promised is what was made: the change time decides, REMOVE deletes.
    created = MaterializedView.objects.get(name="flattened_dynamodb_orders_materialized_view")
    assert created.target_pool.engine == "ReplacingMergeTree(_shoal_version, deleted)"
    wait_for(lambda: Backfill.objects.filter(status="done").exists(), message="backfill")
    page.wait_for_selector("text=Done ·")
    screenshot(page, "mv-5-detail")

    page.click("a:has-text('dynamodb_orders') >> nth=0")
    page.click("a.button:has-text('Preview Data')")
    table = page.locator("table.preview")
    table.wait_for()
    text = table.inner_text()
    assert "order-1" in text and "order-2" not in text  # current state: modified, and the removed one hidden
    assert table.locator("tbody tr").count() == 1
    screenshot(page, "mv-6-target-preview")
