"""The one-time link that creates the first admin.

The console may face the internet (Firehose must reach it), so the page that creates the first
user exists only behind a random token that `make run` prints while no user exists. The token is
signed with SECRET_KEY and expires, so nothing needs storing.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.urls import reverse

SALT = "shoal.setup-token"
MAX_AGE = 24 * 3600


def needs_setup() -> bool:
    return not get_user_model().objects.exists()


def make_token() -> str:
    return signing.dumps(secrets.token_urlsafe(16), salt=SALT, compress=True)


def check_token(token: str) -> bool:
    try:
        signing.loads(token, salt=SALT, max_age=MAX_AGE)
    except signing.BadSignature:
        return False
    return True


def setup_url(token: str | None = None) -> str:
    return settings.PUBLIC_BASE_URL + reverse("setup", args=[token or make_token()])


def notice(style=str):
    """For `make run`: a callable giving the first-admin link while no user exists, then None."""
    url = setup_url()

    def text() -> str | None:
        if not needs_setup():
            return None
        return style(f"No user exists yet. Open this one-time link to create the first admin:\n    {url}")

    return text
