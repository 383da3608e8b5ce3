"""Console pages: the first-admin link, login, pool pages and Preview Data (through a real worker)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from console import setup_token
from tests.helpers.firehose import change_record
from tests.helpers.pools import land_direct
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_setup_page_needs_the_token(client):
    assert client.get("/setup/not-a-token/").status_code == 404
    token = setup_token.make_token()
    page = client.get(f"/setup/{token}/")
    assert page.status_code == 200 and b"Create admin" in page.content


def test_the_setup_link_creates_the_first_admin_once(client):
    token = setup_token.make_token()
    reply = client.post(
        f"/setup/{token}/",
        {"username": "root", "email": "", "password": "Pelican-Brief-42", "password2": "Pelican-Brief-42"},
    )
    assert reply.status_code == 302
    assert get_user_model().objects.get().is_superuser
    assert client.get(reverse("pools:list")).status_code == 200  # logged in
    # Once a user exists, the page is gone, even with a valid token.
    assert client.get(f"/setup/{setup_token.make_token()}/").status_code == 404


def test_the_setup_form_validates_the_password(client):
    token = setup_token.make_token()
    reply = client.post(f"/setup/{token}/", {"username": "root", "password": "a", "password2": "b"})
    assert reply.status_code == 200 and b"differ" in reply.content
    assert not get_user_model().objects.exists()


def test_console_pages_need_a_login(client, pool):
    for url in (reverse("pools:list"), reverse("pools:detail", args=[pool.name])):
        reply = client.get(url)
        assert reply.status_code == 302 and reply["Location"].startswith("/login/")


def test_the_pool_page_shows_endpoint_key_and_deliveries(admin_client, pool):
    land_direct(pool, [change_record("o1")], request_id="req-visible")
    page = admin_client.get(reverse("pools:detail", args=[pool.name])).content.decode()
    assert pool.endpoint_url() in page and pool.access_key in page
    assert "req-visible" in page


def test_rotating_the_key_changes_it(admin_client, pool):
    old = pool.access_key
    admin_client.post(reverse("pools:rotate_key", args=[pool.name]))
    pool.refresh_from_db()
    assert pool.access_key != old


def test_preview_data_runs_in_the_warehouse_and_shows_the_newest_rows(admin_client, pool, warehouse_worker):
    land_direct(pool, [change_record("o-old")])
    wait_for(lambda: pool.deliveries.filter(status="loaded").count() == 1, message="first load")
    land_direct(pool, [change_record("o-new", taqueria="El Farolito")])
    wait_for(lambda: pool.deliveries.filter(status="loaded").count() == 2, message="second load")

    start = admin_client.get(reverse("pools:preview", args=[pool.name]) + "?limit=10", HTTP_HX_REQUEST="true")
    html = start.content.decode()
    assert "spinner" in html
    poll_url = re.search(r'hx-get="([^"]+)"', html).group(1).replace("&amp;", "&")

    def poll():
        body = admin_client.get(poll_url, HTTP_HX_REQUEST="true").content.decode()
        return body if "spinner" not in body else None

    body = wait_for(poll, message="preview result")
    assert body.index("o-new") < body.index("o-old")  # newest first
    assert "El Farolito" in body and "event_name" in body and "LowCardinality(String)" in body


def test_preview_counts_its_rows_in_words_that_agree():
    from django.template.loader import render_to_string

    from pools.models import DataPool

    pool = DataPool(name="orders_cdc")
    one = {"columns": ["a"], "types": ["UInt8"], "rows": [[1]], "elapsed_ms": 1.0}
    assert "1 newest row ·" in render_to_string("pools/_preview.html", {"pool": pool, "result": one})
    two = {**one, "rows": [[1], [2]]}
    assert "2 newest rows ·" in render_to_string("pools/_preview.html", {"pool": pool, "result": two})
