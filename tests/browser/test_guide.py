"""The Propel guide end to end, exactly as written, in the browser: Step 2 (create the DynamoDB
Data Pool with the guide's choices), Step 3 (Firehose delivers; Preview Data), Step 4 (the SQL
tested in the SQL Console and pasted verbatim into a Materialized View, the guide's answers,
Backfill). Every column of the transformed pool is checked against the items sent.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login, screenshot
from tests.helpers.firehose import firehose_body, firehose_headers
from tests.helpers.pools import GUIDE_COLUMNS, GUIDE_STEP_4
from tests.helpers.servers import http
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SOURCE = "my_dynamo_orders_change_events"  # the guide's name: its SQL runs with no edit at all
TARGET = "dynamodb_orders"  # dynamodb_<TABLE_NAME>
VIEW = "flattened_dynamodb_orders_materialized_view"


@pytest.fixture
def clean_warehouse(warehouse_worker):
    """Warehouse objects outlive the test database: start and end without these names."""
    from console import warehouse_client
    from pools.tasks import warehouse_drop_table

    def drop():
        for name in (f"_mv_{VIEW}", TARGET, SOURCE):
            warehouse_client.call(warehouse_drop_table, 0, name)

    drop()
    yield
    drop()


def expected_state(records: list[dict]) -> dict[str, dict]:
    """The guide's columns of each item's latest change (REMOVEd items absent), from what was sent."""
    latest: dict[str, dict] = {}
    for record in sorted(records, key=lambda r: r["dynamodb"]["ApproximateCreationDateTime"]):
        latest[record["dynamodb"]["Keys"]["order_id"]["S"]] = record
    rows = {}
    for order_id, record in latest.items():
        if record["eventName"] == "REMOVE":
            continue
        new, old = record["dynamodb"]["NewImage"], record["dynamodb"].get("OldImage") or {}
        when = datetime.strptime(record["dynamodb"]["Keys"]["timestamp"]["S"], "%Y-%m-%dT%H:%M:%S.%fZ")
        rows[order_id] = {
            "order_id": order_id,
            "timestamp": when.replace(tzinfo=UTC, microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "deleted": False,
            "taqueria": new["taqueria"]["S"],
            "quantity": int(new["quantity"]["N"]),
            "total_price": float(new["total_price"]["S"]),
            "order_items": new["orderItems"],
            "new_image": new,
            "old_image": old,
        }
    return rows


def deliver(live_server, endpoint_url: str, access_key: str, records: list[dict]) -> None:
    address = live_server.url + urlsplit(endpoint_url).path  # PUBLIC_BASE_URL's path, on the test server
    request_id, body = firehose_body(records)
    assert http("POST", address, body, firehose_headers(request_id, access_key)).status == 200


def next_step(page, path: str) -> None:
    page.click(".wizard-actions button[type=submit]")
    page.wait_for_url(f"**{path}")


def test_the_guide_end_to_end(page, page_problems, live_server, user, clean_warehouse):
    from console import warehouse_client
    from console.tasks import run_sql
    from pools.models import DataPool
    from pools.samples import make_records
    from views_mv.models import Backfill, MaterializedView

    records = [json.loads(r) for r in make_records(160, seed=12)]
    assert {r["eventName"] for r in records} == {"INSERT", "MODIFY", "REMOVE"}
    before, after = records[:100], records[100:]

    # Step 2: create a DynamoDB Data Pool.
    login(page, live_server)
    page.click("nav >> text=Data Pools")
    page.click("header.page-head >> text=Create Data Pool")
    page.wait_for_url("**/pools/new/source/")
    page.check("input[name=source][value=dynamodb]")  # "select DynamoDB"
    next_step(page, "/pools/new/schema/")  # "leave the defaults"
    next_step(page, "/pools/new/auth/")
    page.fill("#id_user", "firehose")  # "a user and password for the Basic Authentication"
    page.fill("#id_password", "Taqueria-Firehose-2024")
    page.fill("#id_confirm", "Taqueria-Firehose-2024")
    next_step(page, "/pools/new/table/")
    page.check("input[name=mode][value=append_only]")  # "select Append-only data"
    next_step(page, "/pools/new/confirm/")  # "Confirm your table settings and click Continue"
    expect(page.locator(".engine")).to_have_text("MERGE_TREE")
    next_step(page, "/pools/new/name/")
    page.locator("#id_name").press_sequentially(SOURCE, delay=10)  # checked as typed
    expect(page.locator("#name-message")).to_contain_text("is available")
    page.fill("#id_description", "Taqueria orders from DynamoDB")
    next_step(page, "/pools/new/done/")
    endpoint_url = page.locator("#endpoint-url").inner_text()
    access_key = page.locator("#access-key").inner_text()
    # PUBLIC_BASE_URL is http here: the page says Firehose cannot deliver to it.
    expect(page.locator(".endpoint-warning")).to_contain_text("Firehose cannot deliver here yet")
    screenshot(page, "guide-1-pool-done")

    # Step 3: Firehose delivers the table's changes; Preview Data shows them as they land.
    source = DataPool.objects.get(name=SOURCE)
    deliver(live_server, endpoint_url, access_key, before)
    page.click("a.button:has-text('Open Data Pool')")
    page.wait_for_url(f"**/pools/{SOURCE}/")
    expect(page.locator("#pool-stats")).to_contain_text("100", timeout=30_000)  # the cards follow the load
    page.click("a.button:has-text('Preview Data')")
    expect(page.locator("table.preview tbody tr")).to_have_count(50)
    screenshot(page, "guide-2-preview")

    # Step 4: test the SQL in the SQL Console, as written.
    page.click("nav >> text=SQL Console")
    page.fill("#sql-input", GUIDE_STEP_4)
    page.click("#sql-run-button")
    result = page.locator(".sql-result table")
    result.wait_for()
    header = result.locator("thead").inner_text()
    assert all(c in header for c in GUIDE_COLUMNS)
    expect(result).to_contain_text('{"L":')  # new_image.orderItems AS order_items holds the attribute
    screenshot(page, "guide-3-sql-console")

    # Create the Materialized View: the SQL above, verbatim; the guide's answers.
    page.click("nav >> text=Materialized Views")
    page.click("text=Create Materialized View")
    page.fill("textarea[name=sql]", GUIDE_STEP_4)
    page.click("button[value=test]")
    page.wait_for_selector("text=Output of the query")
    types = page.locator("table.grid").first.inner_text()
    assert "order_items\tNullable(String)" in types
    expect(page.locator("table.preview")).to_contain_text('{"L":[{"M":')  # Test shows the attribute
    page.click("button[value=next]")
    expect(page.locator("input[name=new_name]")).to_have_value(TARGET)  # "dynamodb_<TABLE_NAME>"
    expect(page.locator("select[name=existing]")).to_have_count(0)
    page.check("input[name=kind][value=new]")  # "Select New Data Pool"
    page.click("button:has-text('Continue')")
    page.check("input[name=mode][value=mutable]")  # "Mutable records"
    page.check("input[name=unique][value=order_id]")  # "order_id uniquely identifies a record"
    page.check("input[name=time_column][value=timestamp]")  # "Select the timestamp column"
    expect(page.locator("input[name=filters]:checked")).to_have_count(0)  # "leave empty"
    page.check('input[name=version][value=""]')  # "Leave empty": Shoal's default, each change's time
    page.click("button:has-text('Continue')")
    confirm = page.locator("dl.confirm")
    expect(confirm).to_contain_text("REPLACING_MERGE_TREE")
    expect(confirm.locator("dt:has-text('Sorting key') + dd")).to_have_text("order_id")
    expect(confirm.locator("dt:has-text('Default timestamp') + dd")).to_have_text("timestamp")
    expect(page.locator("input[name=backfill]")).to_be_checked()  # "Select Backfill"
    expect(page.locator("input[name=name]")).to_have_value(VIEW)
    page.fill("textarea[name=description]", "The orders as they are now")
    page.click("button:has-text('Create Materialized View')")
    page.wait_for_selector(f"h1:has-text('{VIEW}')")
    expect(page.locator("#mv-progress")).not_to_contain_text("not requested")
    mv = MaterializedView.objects.get(name=VIEW)
    wait_for(lambda: Backfill.objects.filter(mv=mv, status="done").exists(), timeout=60, message="backfill")
    expect(page.locator("#mv-progress")).to_contain_text("Done ·")
    expect(page.locator("pre.sql-written")).to_contain_text("new_image.orderItems AS order_items,")
    screenshot(page, "guide-4-view")

    # Later changes flow through the view with no further step.
    deliver(live_server, endpoint_url, access_key, after)
    wait_for(lambda: not source.deliveries.exclude(status="loaded").exists(), timeout=60, message="loads")

    # "Go to the Data Pools section, click on your Data Pool, Preview Data."
    expected = expected_state(records)
    page.click("nav >> text=Data Pools")
    page.click(f"a:has-text('{TARGET}')")
    expect(page.locator("#pool-stats")).to_contain_text(f"{len(expected)}", timeout=30_000)
    expect(page.locator("#pool-status")).to_have_text("Live")
    page.click("a.button:has-text('Preview Data')")
    preview = page.locator("table.preview")
    expect(preview.locator("tbody tr")).to_have_count(min(50, len(expected)))
    expect(preview).to_contain_text('{"L":[{"M":')
    screenshot(page, "guide-5-transformed-preview")

    # The view list fits a 1366 px screen; the admin's pages have an icon too.
    page.set_viewport_size({"width": 1366, "height": 768})
    page.click("nav >> text=Materialized Views")
    page.wait_for_selector(f"a:has-text('{VIEW}')")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "mv-list")
    page.goto(live_server.url + "/admin/")
    page.wait_for_selector("#site-name")
    icon = page.request.get(live_server.url + "/favicon.ico")
    assert icon.ok and icon.headers["content-type"].startswith("image/svg+xml")
    assert not page_problems, page_problems

    # Every column of every row of the transformed pool, against the items sent.
    columns = ", ".join(GUIDE_COLUMNS)
    result = warehouse_client.call(run_sql, f"SELECT {columns} FROM {TARGET} ORDER BY order_id")
    assert "error" not in result, result
    rows = [dict(zip(GUIDE_COLUMNS, row, strict=True)) for row in result["rows"]]
    for row in rows:
        row["order_items"] = json.loads(row["order_items"])
    assert [r["order_id"] for r in rows] == sorted(expected)
    for row in rows:
        for column in GUIDE_COLUMNS:
            assert row[column] == expected[row["order_id"]][column], (row["order_id"], column)
