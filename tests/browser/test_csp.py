"""The Content-Security-Policy holds on every main page: no inline script or style is needed, htmx
works under it, and Chromium reports no violation and no script error anywhere."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from tests.browser.conftest import login
from tests.helpers.firehose import change_record
from tests.helpers.pools import land_direct
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Every violation is also reported to the page; the listener is installed before any page script.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
"""


class Watch:
    def __init__(self, page):
        self.page = page
        self.problems: list[str] = []
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("console", self.console)
        page.on("pageerror", lambda e: self.problems.append(f"{page.url}: {e}"))
        page.on("response", self.response)

    def console(self, message) -> None:
        # A failed load is reported with its address by `response` below.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(f"{self.page.url}: {message.text}")

    def response(self, response) -> None:
        # Browsers ask for /favicon.ico on their own; Shoal has none.
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            self.problems.append(f"{self.page.url}: {response.status} for {response.url}")

    def visit(self, url: str) -> None:
        reply = self.page.goto(url)
        policy = reply.headers.get("content-security-policy", "")
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, (url, policy)
        self.settle()

    def settle(self) -> None:
        self.page.wait_for_load_state("networkidle")
        self.problems += [f"{self.page.url}: {v}" for v in self.page.evaluate("window.__violations || []")]


def test_the_main_pages_run_under_the_policy(page, live_server, warehouse_worker):
    from pools.services import create_pool

    get_user_model().objects.create_superuser("maria", "maria@example.com", "Taqueria-Data-2024")
    pool = create_pool("csp_orders_change_events")
    land_direct(pool, [change_record("o1"), change_record("o2", "MODIFY")])
    wait_for(lambda: type(pool).objects.get(pk=pool.pk).record_count == 2, message="the load")
    watch = Watch(page)
    base = live_server.url
    login(page, live_server)
    watch.settle()

    watch.visit(base + "/pools/")
    # The pool page: the chart, the key reveal, Preview Data (an htmx swap with a spinner).
    watch.visit(base + pool.get_absolute_url())
    page.click("summary:has-text('Reveal')")
    expect(page.locator("#access-key")).to_have_text(pool.access_key)
    watch.visit(base + f"/pools/{pool.name}/preview/")
    expect(page.locator("body")).to_contain_text("o1")
    watch.settle()

    # The Create Data Pool wizard, every step (htmx swaps), to the copy buttons of the last one.
    watch.visit(base + "/pools/new/")
    for _ in range(2):  # source, schema
        page.click(".wizard-actions button[type=submit]")
        watch.settle()
    page.fill("#id_user", "firehose")
    page.fill("#id_password", "Taqueria-Firehose-2024")
    page.fill("#id_confirm", "Taqueria-Firehose-2024")
    page.click(".wizard-actions button[type=submit]")  # auth
    page.wait_for_url("**/pools/new/table/")
    page.click("text=Mutable data")
    page.click("text=Append-only data")
    page.click(".wizard-actions button[type=submit]")  # table
    watch.settle()
    page.click(".wizard-actions button[type=submit]")  # confirm
    page.locator("#id_name").press_sequentially("csp_wizard_pool", delay=10)
    expect(page.locator("#name-message")).to_contain_text("is available")
    page.click(".wizard-actions button[type=submit]")
    page.wait_for_url("**/pools/new/done/")
    copy = page.locator("button.copy").first
    expect(copy).to_be_visible()
    copy.click()
    expect(copy).not_to_have_text("Copy")
    watch.settle()

    # The SQL Console, running a query.
    watch.visit(base + "/sql/")
    page.fill("textarea[name=sql]", f"SELECT count() AS n FROM {pool.name}")
    page.click("button:has-text('Run')")
    expect(page.locator("#sql-result table")).to_contain_text("2")
    watch.settle()

    # The Materialized View wizard's first step, with Test.
    watch.visit(base + "/views/new/")
    page.fill("textarea[name=sql]", f"SELECT keys.order_id.S AS order_id FROM {pool.name}")
    page.click("button[value=test]")
    expect(page.locator("body")).to_contain_text("o2")
    watch.settle()

    # AWS connections and the admin.
    watch.visit(base + "/aws/")
    watch.visit(base + "/aws/connections/new/")
    watch.visit(base + "/admin/")
    watch.visit(base + f"/admin/pools/datapool/{pool.pk}/change/")
    watch.visit(base + "/admin/pools/delivery/")

    assert watch.problems == [], "\n".join(watch.problems)
