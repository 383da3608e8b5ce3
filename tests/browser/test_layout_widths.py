"""The pages fit the window at every width between a phone's fold (720 px) and a desktop's.

A reviewer in Chromium found the whole page scrolling sideways from 720 px to about 1,270 px (the
pool page's action buttons would not wrap; the Data Pools table would not fit at 800 px), and at
900 px a code snippet of the pool page (`SELECT … FROM orders_cdc`) squeezed to a letter a line.
A table may scroll inside its own box; the page itself must not."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.browser.conftest import login
from tests.helpers.firehose import change_record
from tests.helpers.pools import fresh_pool, land_direct
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = [720, 800, 900, 1024, 1270, 1360]  # the last, a desktop's
HEIGHT = 900

# Set it to a folder to keep a full-page screenshot of each page at each width.
SHOTS = os.environ.get("SHOAL_LAYOUT_SCREENSHOTS")

# What sticks out past the window's right edge with no scrolling box of its own to hold it.
OVERFLOWING = """() => {
    const clipped = (e) => {
        for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
            if (getComputedStyle(a).overflowX !== "visible") return true;
        }
        return false;
    };
    const label = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "")
        + (typeof e.className === "string" && e.className.trim()
            ? "." + e.className.trim().split(/\\s+/).join(".") : "");
    return [...document.body.querySelectorAll("*")]
        .filter((e) => {
            const r = e.getBoundingClientRect();  // its own text may stick out of its box
            const right = r.right + Math.max(0, e.scrollWidth - e.clientWidth);
            return r.width && right > window.innerWidth + 0.5 && !clipped(e);
        })
        .slice(0, 12)
        .map((e) => `${label(e)} right=${Math.round(e.getBoundingClientRect().right)}`);
}"""

# Code that holds more than a few characters yet was given a column narrower than eight of them.
SQUEEZED_CODE = """() => [...document.querySelectorAll("main code, main pre")]
    .filter((e) => e.getClientRects().length)
    .map((e) => [e.textContent.trim(), e.getBoundingClientRect().width])
    .filter(([text, width]) => text.length > 12 && width < 80)
    .map(([text, width]) => `${text.slice(0, 40)} (${Math.round(width)} px)`)"""


@pytest.fixture
def pools(live_server, user, warehouse_worker):
    """A pool Firehose has fed a few records, its cards filled, and one with a long name never fed."""
    fed = fresh_pool("orders_cdc", description="Taqueria orders from DynamoDB, through Firehose")
    never_fed = fresh_pool(
        "my_dynamo_orders_change_events_from_the_mission_district",
        description="Every change to the orders table of the Mission District's taquerias, kept for a year",
    )
    land_direct(
        fed,
        [
            change_record("order-1001", "INSERT", quantity=3, taqueria="El Farolito"),
            change_record("order-1002", "INSERT", quantity=1, taqueria="La Taqueria"),
            change_record("order-1001", "MODIFY", quantity=4, taqueria="El Farolito"),
            change_record("order-1003", "INSERT", quantity=2),
            change_record("order-1002", "REMOVE", quantity=1, taqueria="La Taqueria"),
        ],
    )
    wait_for(lambda: fed.deliveries.filter(status="loaded").exists(), message="load")
    fed.refresh_from_db()
    assert fed.record_count == 5
    return fed, never_fed


def problems_at_every_width(page, url: str, name: str, *, then=None) -> list[str]:
    """Opens `url` at each width and tells where the page scrolls sideways or squeezes code into
    a sliver; `then(page)` runs after each load (to open a part of the page)."""
    problems: list[str] = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": HEIGHT})
        page.goto(url)
        if then:
            then(page)
        scroll_width, inner_width = page.evaluate(
            "() => [document.documentElement.scrollWidth, window.innerWidth]"
        )
        if scroll_width > inner_width:
            problems.append(
                f"{name} at {width} px scrolls sideways ({scroll_width} > {inner_width}): "
                + ", ".join(page.evaluate(OVERFLOWING))
            )
        squeezed = page.evaluate(SQUEEZED_CODE)
        if squeezed:
            problems.append(f"{name} at {width} px squeezes code: " + "; ".join(squeezed))
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(SHOTS) / f"layout-{name}-{width}.png"), full_page=True)
    return problems


def open_preview(page) -> None:
    page.click("a.button:has-text('Preview Data')")
    page.locator("table.preview").wait_for()


def test_the_pool_page_fits_every_width(page, live_server, pools):
    fed, never_fed = pools
    login(page, live_server)
    url = live_server.url + fed.get_absolute_url()
    problems = [
        *problems_at_every_width(page, url, "pool"),
        *problems_at_every_width(page, url, "pool-preview", then=open_preview),
        # A long name, and the page of a pool no delivery has reached yet.
        *problems_at_every_width(page, live_server.url + never_fed.get_absolute_url(), "pool-unfed"),
    ]
    assert not problems, "\n".join(problems)


def test_the_data_pools_list_fits_every_width(page, live_server, pools):
    login(page, live_server)
    problems = problems_at_every_width(page, live_server.url + "/pools/", "pools")
    assert not problems, "\n".join(problems)


def test_the_sql_console_fits_every_width_and_points_to_no_side(page, live_server, pools):
    login(page, live_server)
    problems = problems_at_every_width(page, live_server.url + "/sql/", "sql")
    assert not problems, "\n".join(problems)
    # Below 1,000 px the pools and the history stack under the editor: "on the right" was false.
    for width in (390, 1360):
        page.set_viewport_size({"width": width, "height": HEIGHT})
        page.goto(live_server.url + "/sql/")
        hint = page.locator(".sql-placeholder").inner_text()
        assert not re.search(r"\b(right|left)\b", hint, re.I), hint
