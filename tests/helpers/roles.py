"""Users with each of Shoal's roles, for tests (console.roles)."""

from __future__ import annotations

import uuid

from django.contrib.auth import get_user_model

from console import roles

PASSWORD = "Taqueria-Data-2024"


def make_user(role: str | None, username: str | None = None, password: str = PASSWORD, **extra):
    user = get_user_model().objects.create_user(
        username or f"{role or 'nobody'}-{uuid.uuid4().hex[:6]}", password=password, **extra
    )
    roles.set_role(user, role)
    return user


def signed_in(client, role: str | None, **kwargs):
    client.force_login(make_user(role, **kwargs))
    return client
