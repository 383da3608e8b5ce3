"""Pages a new user trips over (issue 20), walked in Chromium."""

from __future__ import annotations

import pytest

from tests.browser.conftest import login, screenshot
from tests.helpers.roles import make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_api_key_form_shows_role_only_for_manage_keys(page, live_server, user):
    login(page, live_server)
    page.goto(live_server.url + "/api-keys/")
    assert "active" in (page.locator("nav.sidebar a[href='/api-keys/']").get_attribute("class") or "")
    role, pools = page.locator("#key-role"), page.locator("#key-pools")
    assert page.locator("select[name=scope]").input_value() == "query"
    assert not role.is_visible() and pools.is_visible()
    page.select_option("select[name=scope]", "manage")
    assert role.is_visible() and not pools.is_visible()
    page.fill("input[name=name]", "etl")
    page.click("text=Create key")
    page.locator("#new-key").wait_for()
    assert "manage" in page.locator("table.grid").inner_text()
    screenshot(page, "api-keys")


def test_a_viewer_meets_a_forbidden_page_in_the_console_s_layout(page, live_server, user):
    make_user("viewer", "vic")
    login(page, live_server, username="vic")
    page.goto(live_server.url + "/pools/new/source/")
    card = page.locator("#forbidden")
    assert "This page needs the editor role" in card.inner_text() and "maria" in card.inner_text()
    assert page.locator("nav.sidebar >> text=Admin").count() == 0
    screenshot(page, "forbidden")


NARROW_PAGES = [
    "/pools/",
    "/pools/{pool}/",
    "/sql/",
    "/views/",
    "/aws/connections/",
    "/api-keys/",
    "/pools/new/source/",
]


def test_every_page_is_usable_at_360_px(page, live_server, user):
    """At 390 px the sidebar stayed and pages scrolled sideways; the endpoint URL and access key
    wrapped one character a line."""
    from pools.services import create_pool
    from tests.helpers.firehose import change_record
    from tests.helpers.pools import land_direct

    pool = create_pool("orders_cdc", description="Taqueria orders from DynamoDB")
    land_direct(pool, [change_record("o1")])
    page.set_viewport_size({"width": 360, "height": 740})
    login(page, live_server)
    for path in NARROW_PAGES:
        page.goto(live_server.url + path.format(pool=pool.name))
        wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        culprits = page.evaluate(
            "() => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right"
            " > window.innerWidth + 1).slice(0, 5).map(e => e.tagName + '.' + e.className)"
        )
        assert wide <= 1, (path, wide, culprits)
    # The sidebar is a Menu button that opens the links.
    page.goto(live_server.url + f"/pools/{pool.name}/")
    links = page.locator("#nav-links")
    assert not links.is_visible()
    page.click("button.menu-toggle")
    assert links.is_visible() and page.locator("#nav-links >> text=SQL Console").is_visible()
    page.click("button.menu-toggle")
    # The endpoint URL wraps as a URL does, not a character a line: a few lines at most.
    height = page.locator("#endpoint-url").evaluate("e => e.getBoundingClientRect().height")
    line = page.locator("#endpoint-url").evaluate("e => parseFloat(getComputedStyle(e).lineHeight) || 18")
    assert height <= 4 * line, (height, line)
    screenshot(page, "narrow-pool-page")
