"""A user writes SQL over a Data Pool in the SQL Console, runs it with Ctrl-Enter, fixes an error
and goes back to a query from the history."""

from __future__ import annotations

import pytest

from console import warehouse_client
from pools.tasks import warehouse_drop_table
from tests.browser.conftest import login, screenshot
from tests.helpers.firehose import change_record
from tests.helpers.pools import land_direct
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

QUERY = """SELECT
  keys.order_id.S AS order_id,
  event_name,
  toInt32OrNull(new_image.quantity.N) AS quantity,
  new_image.taqueria.S AS taqueria,
  new_image
FROM my_dynamo_orders_change_events
ORDER BY order_id, quantity"""


def test_run_sql_see_typed_rows_and_errors_and_reuse_history(page, live_server, user, warehouse_worker):
    from pools.services import create_pool

    pool = create_pool("my_dynamo_orders_change_events", description="Taqueria orders from DynamoDB")
    # Another test may have left a table of this name in the warehouse: start from an empty one
    # (the loader creates it again on the first delivery).
    warehouse_client.call(warehouse_drop_table, pool.pk, pool.name)
    land_direct(
        pool,
        [
            change_record("order-1001", "INSERT", quantity=3, taqueria="El Farolito"),
            change_record("order-1002", "INSERT", quantity=1, taqueria="La Taqueria"),
            change_record("order-1001", "MODIFY", quantity=4, taqueria="El Farolito"),
        ],
    )
    wait_for(lambda: pool.deliveries.filter(status="loaded").exists(), message="load")

    login(page, live_server)
    page.click("nav >> text=SQL Console")
    editor = page.locator("#sql-input")
    assert editor.evaluate("e => e === document.activeElement")

    # A bad query first: ClickHouse's message, the position marked and selected in the editor.
    editor.press_sequentially("SELECT event_name,")
    editor.press("Enter")
    editor.press("Tab")
    editor.press_sequentially("count(")
    editor.press("Enter")  # keeps the line's indentation
    editor.press_sequentially("FROM my_dynamo_orders_change_events")
    assert editor.input_value() == "SELECT event_name,\n  count(\n  FROM my_dynamo_orders_change_events"
    editor.press("Control+Enter")
    error = page.locator(".sql-error")
    error.wait_for()
    assert "Syntax error" in error.inner_text() and "failed at position" in error.inner_text()
    assert page.locator(".sql-excerpt mark").count() == 1
    # The editor's selection is set by script once the result is swapped in (data-marked says so).
    page.locator("#sql-result [data-marked]").wait_for(state="attached")
    assert editor.evaluate("e => e.selectionEnd - e.selectionStart") == 1

    # Clicking a pool name inserts it; a good query then shows rows with column types.
    editor.fill("SELECT count() AS changes FROM ")
    editor.press("End")
    page.locator(".sql-schema summary [data-insert='my_dynamo_orders_change_events']").click()
    assert editor.input_value() == "SELECT count() AS changes FROM my_dynamo_orders_change_events"
    editor.press("Control+Enter")
    page.locator("table.sql-rows").wait_for()
    assert page.locator("table.sql-rows th").inner_text() == "changes\nUInt64"
    assert page.locator("table.sql-rows td").inner_text() == "3"

    editor.fill(QUERY)
    page.click("#sql-run-button")
    page.wait_for_selector("table.sql-rows th:has-text('taqueria')")
    table = page.locator("table.sql-rows")
    assert table.locator("tbody tr").count() == 3
    assert "Dynamic" in table.locator("thead").inner_text()
    assert "3 rows" in page.locator(".sql-summary").inner_text()

    # History: newest first, with the error flagged; a click loads a past query into the editor.
    history = page.locator("#sql-history li")
    assert history.count() == 3
    assert "error" in history.nth(2).inner_text() and "1 row" in history.nth(1).inner_text()
    history.nth(1).locator("a").click()
    assert editor.input_value() == "SELECT count() AS changes FROM my_dynamo_orders_change_events"

    # The picture: the orders query and its rows.
    history.nth(0).locator("a").click()
    page.click("#sql-run-button")
    page.wait_for_selector("table.sql-rows th:has-text('taqueria')")
    table.locator("tbody tr").nth(1).locator("details.json summary").click()
    page.locator("#sql-result .scroll").evaluate("e => { e.scrollLeft = 0 }")
    page.mouse.move(0, 0)
    screenshot(page, "sql-console")
    warehouse_client.call(warehouse_drop_table, pool.pk, pool.name)
