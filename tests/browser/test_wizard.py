"""A data engineer creates a DynamoDB Data Pool with the wizard, then Firehose feeds it."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login, screenshot
from tests.helpers.firehose import change_record, firehose_body, firehose_headers
from tests.helpers.servers import http
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Not the name other tests use: warehouse tables outlive the database between tests.
NAME = "taqueria_orders_change_events"


def heading(page):
    return page.locator(".wizard-head h2")


def next_step(page, path: str, title: str) -> None:
    page.click(".wizard-actions button[type=submit]")
    page.wait_for_url(f"**{path}")
    expect(heading(page)).to_have_text(title)


def test_the_wizard_creates_a_pool_that_firehose_can_feed(page, live_server, user, warehouse_worker):
    from pools.models import DataPool
    from pools.services import create_pool

    create_pool("orders_taken")
    login(page, live_server)
    page.click("header.page-head >> text=Create Data Pool")

    # 1. Source: DynamoDB is selected; the other kinds cannot be.
    page.wait_for_url("**/pools/new/source/")
    expect(heading(page)).to_have_text("Select your data source")
    expect(page.locator("input[name=source][value=dynamodb]")).to_be_checked()
    expect(page.locator("input[name=source][value=kafka]")).to_be_disabled()
    page.evaluate("window.stillTheSamePage = true")  # every step below is an htmx swap
    screenshot(page, "wizard-1-source")

    # 2. Schema: the change-event columns, as they land.
    next_step(page, "/pools/new/schema/", "Define schema")
    expect(page.locator("table.schema")).to_contain_text("approximate_creation_date_time")
    expect(page).to_have_title("Define schema · Create Data Pool · Shoal")
    screenshot(page, "wizard-2-schema")

    # 3. Authentication: a mistyped confirmation is caught next to the field.
    next_step(page, "/pools/new/auth/", "Configure authentication")
    page.fill("#id_user", "firehose")
    page.fill("#id_password", "Taqueria-Firehose-2024")
    page.fill("#id_confirm", "Taqueria-Firehose-2025")
    page.click(".wizard-actions button[type=submit]")
    expect(page.locator("#confirm-error")).to_have_text("The passwords do not match.")
    assert page.url.endswith("/pools/new/auth/")
    screenshot(page, "wizard-3-auth")
    page.fill("#id_password", "Taqueria-Firehose-2024")
    page.fill("#id_confirm", "Taqueria-Firehose-2024")

    # 4. Table settings: Append-only (preselected), queried by _received_at.
    next_step(page, "/pools/new/table/", "Table settings")
    expect(page.locator("input[name=mode][value=append_only]")).to_be_checked()
    expect(page.locator("input[name=time_column][value=_received_at]")).to_be_checked()
    unique_question = page.locator("fieldset", has_text="Which columns uniquely identify your records?")
    expect(unique_question).to_be_hidden()  # a question for mutable data only
    page.click("text=Mutable data")
    expect(unique_question).to_be_visible()
    page.click("text=Append-only data")
    expect(unique_question).to_be_hidden()
    screenshot(page, "wizard-4-table")

    # Back and forward through the browser's history still show the right steps.
    page.go_back()
    page.wait_for_url("**/pools/new/auth/")
    expect(heading(page)).to_have_text("Configure authentication")
    page.go_forward()
    page.wait_for_url("**/pools/new/table/")
    expect(heading(page)).to_have_text("Table settings")

    # 5. Confirmation, before anything exists.
    next_step(page, "/pools/new/confirm/", "Confirm table settings")
    expect(page.locator(".engine")).to_have_text("MERGE_TREE")
    expect(page.locator(".sorting-key")).to_have_text("_received_at")
    assert DataPool.objects.count() == 1
    screenshot(page, "wizard-5-confirm")

    # 6. Name: checked as it is typed.
    next_step(page, "/pools/new/name/", "Name your Data Pool")
    name = page.locator("#id_name")
    message = page.locator("#name-message")
    name.press_sequentially("orders_taken", delay=15)
    expect(message).to_contain_text("already exists")
    name.fill("")
    name.press_sequentially("orders-changes", delay=15)
    expect(message).to_contain_text("Use letters, digits and underscores")
    name.fill("")
    name.press_sequentially(NAME, delay=15)
    expect(message).to_contain_text("is available")
    page.fill("#id_description", "Taqueria orders from DynamoDB")
    screenshot(page, "wizard-6-name")

    # 7. Done: the endpoint and the access key Firehose needs.
    next_step(page, "/pools/new/done/", "Your Data Pool is ready")
    pool = DataPool.objects.get(name=NAME)
    endpoint_url = page.locator("#endpoint-url").inner_text()
    access_key = page.locator("#access-key").inner_text()
    assert endpoint_url == pool.endpoint_url() and access_key == pool.access_key
    expect(page.locator("#basic-auth-user")).to_have_text("firehose")
    copy = page.locator("button.copy").first
    copy.click()
    expect(copy).not_to_have_text("Copy")  # "Copied", or "Press Ctrl+C" where the clipboard is refused
    expect(copy).to_have_text("Copy", timeout=5000)
    assert page.evaluate("window.stillTheSamePage") is True
    screenshot(page, "wizard-7-done")

    # Firehose delivers to the endpoint (PUBLIC_BASE_URL in the page; the test server here).
    address = live_server.url + urlsplit(endpoint_url).path
    records = [
        change_record("order-1001", "INSERT", quantity=3, taqueria="El Farolito"),
        change_record("order-1001", "MODIFY", quantity=4, taqueria="El Farolito"),
    ]
    request_id, body = firehose_body(records)
    assert http("POST", address, body, firehose_headers(request_id, access_key)).status == 200
    wait_for(lambda: pool.deliveries.filter(status="loaded").exists(), message="the delivery to load")

    page.click("a.button:has-text('Open Data Pool')")
    page.wait_for_url(f"**/pools/{NAME}/")
    page.click("a.button:has-text('Preview Data')")
    table = page.locator("table.preview")
    table.wait_for()
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table).to_contain_text("order-1001")
    expect(table).to_contain_text("MODIFY")
