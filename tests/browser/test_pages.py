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
