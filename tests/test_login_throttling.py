"""Sign-in throttling (django-axes): per username and per client address, on /login/ and /admin/login/."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "Taqueria-Data-2024"
LIMIT = getattr(settings, "AXES_FAILURE_LIMIT", 10)


@pytest.fixture
def maria():
    return get_user_model().objects.create_user("maria", "maria@example.com", PASSWORD, is_staff=True)


def sign_in(url: str, username: str, password: str, address: str = "198.51.100.7", client=None):
    """A sign-in as a browser makes it: GET the form for its CSRF token, then POST it."""
    client = client or Client(enforce_csrf_checks=True, REMOTE_ADDR=address)
    page = client.get(url)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    return client.post(
        url, {"username": username, "password": password, "csrfmiddlewaretoken": token}, REMOTE_ADDR=address
    )


def signed_in(reply) -> bool:
    return reply.status_code == 302 and "_auth_user_id" in reply.client.session


@pytest.mark.parametrize("url", ["/login/", "/admin/login/"])
def test_it_locks_a_username_out_from_every_address(maria, url):
    for attempt in range(LIMIT):
        reply = sign_in(url, "maria", "wrong-password", address=f"198.51.100.{attempt + 10}")
    assert reply.status_code == 429
    # Now even the right password, from an address never seen before, is refused, and says why.
    reply = sign_in(url, "maria", PASSWORD, address="203.0.113.99")
    assert reply.status_code == 429 and not signed_in(reply)
    text = reply.content.decode()
    assert "Too many failed sign-ins" in text and "15 minutes" in text


def test_it_locks_an_address_out_whatever_the_username(maria):
    for attempt in range(LIMIT):
        sign_in("/login/", f"guess{attempt}", "wrong-password", address="192.0.2.50")
    reply = sign_in("/login/", "maria", PASSWORD, address="192.0.2.50")
    assert reply.status_code == 429 and not signed_in(reply)
    # Another address may still sign in as maria: the address, not the user, was locked.
    assert signed_in(sign_in("/login/", "maria", PASSWORD, address="192.0.2.51"))


def test_failures_below_the_limit_do_not_lock(maria):
    for _ in range(LIMIT - 1):
        assert sign_in("/login/", "maria", "wrong-password").status_code == 200
    assert signed_in(sign_in("/login/", "maria", PASSWORD))


def test_a_sign_in_to_another_account_does_not_wipe_the_count(maria):
    # An attacker with an account of their own must not reset the count of their guesses at
    # maria's password (and of their address) by signing in as themselves in between.
    get_user_model().objects.create_user("eve", "eve@example.com", "Eve-Own-Password-1")
    for _ in range(LIMIT - 1):
        sign_in("/login/", "maria", "wrong-password", address="192.0.2.66")
    assert signed_in(sign_in("/login/", "eve", "Eve-Own-Password-1", address="192.0.2.66"))
    assert sign_in("/login/", "maria", "wrong-password", address="192.0.2.67").status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_address_counts(maria, settings):
    from console import accounts

    request = Client().get("/login/").wsgi_request
    request.META.update(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.3")
    settings.TRUST_X_FORWARDED_FOR = False
    assert accounts.client_address(request) == "10.0.0.1"
    # The proxy appends the address it saw; what the client wrote before it is not trusted.
    settings.TRUST_X_FORWARDED_FOR = True
    assert accounts.client_address(request) == "198.51.100.3"


def test_force_login_still_signs_in(client, maria):
    from console import roles

    roles.set_role(maria, roles.VIEWER)
    client.force_login(maria)
    assert client.get("/").status_code == 302
    assert client.get("/pools/").status_code == 200


@pytest.mark.slow
def test_the_limit_and_the_lockout_come_from_the_environment():
    import os
    import subprocess
    import sys

    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.AXES_FAILURE_LIMIT, settings.AXES_COOLOFF_TIME.total_seconds())"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "console.settings",
        "LOGIN_FAILURE_LIMIT": "3",
        "LOGIN_LOCKOUT_SECONDS": "60",
    }
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["3", "60.0"]
    env["LOGIN_LOCKOUT_SECONDS"] = "soon"
    bad = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "LOGIN_LOCKOUT_SECONDS" in bad.stderr


@pytest.mark.slow
def test_the_lock_out_ends_after_its_duration(maria, settings):
    import time
    from datetime import timedelta

    settings.AXES_COOLOFF_TIME = timedelta(seconds=2)
    for _ in range(LIMIT):
        sign_in("/login/", "maria", "wrong-password")
    assert sign_in("/login/", "maria", PASSWORD).status_code == 429
    time.sleep(2.5)
    assert signed_in(sign_in("/login/", "maria", PASSWORD))
