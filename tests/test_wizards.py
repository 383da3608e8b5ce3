"""The three wizards (Create Data Pool, Create Materialized View, Connect DynamoDB) run on one
mechanism (console/wizard.py): one page, one stepper, one htmx idiom, the same guards and cancel."""

from __future__ import annotations

import re

import pytest

from pools.services import create_pool
from tests.helpers.roles import make_user

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
POOL = "orders_changes"
# Each wizard: its first step, a later step, its cancel URL, where cancelling leads, its session key.
WIZARDS = {
    "pool": ("/pools/new/source/", "/pools/new/name/", "/pools/new/cancel/", "/pools/", "pool_wizard"),
    "view": ("/views/new/sql/", "/views/new/confirm/", "/views/new/cancel/", "/views/", "mv_wizard"),
    "aws": (
        f"/aws/pools/{POOL}/connect/",
        f"/aws/pools/{POOL}/connect/review/",
        f"/aws/pools/{POOL}/connect/cancel/",
        f"/pools/{POOL}/",
        "aws-wizard-{pk}",
    ),
}


@pytest.fixture
def maria(client):
    client.force_login(make_user("admin", "maria"))
    client.pool = create_pool(POOL)
    return client


@pytest.mark.parametrize("kind", WIZARDS)
def test_a_step_is_a_whole_page_and_for_htmx_the_step_region_alone(maria, kind):
    first = WIZARDS[kind][0]
    page = maria.get(first).content.decode()
    assert "<html" in page and 'id="wizard-step"' in page and 'class="wizard"' in page
    part = maria.get(first, **HTMX)
    html = part.content.decode()
    assert "<html" not in html and 'id="wizard-step"' not in html
    assert 'class="wizard-progress"' in html and 'class="card wizard-card"' in html and "<title>" in html
    assert re.search(r'<li class="current" aria-current="step">', html)
    assert "HX-Request" in part["Vary"]


@pytest.mark.parametrize("kind", WIZARDS)
def test_every_htmx_link_and_form_is_also_a_real_one(maria, kind):
    page = maria.get(WIZARDS[kind][0]).content.decode()
    for tag in re.findall(r"<a [^>]*hx-get[^>]*>", page):
        assert re.search(r'href="([^"]+)"', tag).group(1) == re.search(r'hx-get="([^"]+)"', tag).group(1)
    for tag in re.findall(r"<form [^>]*hx-post[^>]*>", page):
        assert re.search(r'action="([^"]+)"', tag).group(1) == re.search(r'hx-post="([^"]+)"', tag).group(1)
        assert 'method="post"' in tag


@pytest.mark.parametrize("kind", WIZARDS)
def test_a_step_whose_earlier_steps_are_unanswered_sends_to_the_first_one(maria, kind):
    first, later = WIZARDS[kind][:2]
    assert maria.get(later)["Location"] == first
    swapped = maria.get(later, **HTMX)
    assert swapped.status_code == 200 and swapped["HX-Push-Url"] == first
    assert swapped["HX-Retarget"] == "#wizard-step" and swapped["HX-Reswap"] == "innerHTML show:window:top"


@pytest.mark.parametrize("kind", WIZARDS)
def test_cancel_forgets_the_answers_and_leaves(maria, kind):
    first, _, cancel, leaves_to, key = WIZARDS[kind]
    key = key.format(pk=maria.pool.pk)
    session = maria.session
    session[key] = {"saved_at": 2**40, "anything": True}
    session.save()
    assert maria.get(cancel).status_code == 405
    assert f'action="{cancel}"' in maria.get(first).content.decode()
    reply = maria.post(cancel)
    assert reply.status_code == 302 and reply["Location"] == leaves_to
    assert key not in maria.session


@pytest.mark.parametrize("kind", WIZARDS)
def test_an_unknown_step_is_not_found(maria, kind):
    cancel = WIZARDS[kind][2]
    assert maria.get(cancel.replace("/cancel/", "/nope/")).status_code == 404
