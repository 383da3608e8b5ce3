"""Forbidden, as a user meets it (issue 20, item 4): a page in the console's layout that says
which role is needed and who can grant it; a user without a role is told so; Admin → Add user
asks for the role; a viewer's sidebar does not offer Admin."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from console import roles
from tests.helpers.roles import PASSWORD, make_user, signed_in

pytestmark = pytest.mark.django_db


def test_a_viewer_on_an_editor_s_page_is_told_the_role_and_who_grants_it():
    make_user(roles.ADMIN, username="ana-admin")
    viewer = signed_in(Client(), roles.VIEWER)
    reply = viewer.get("/pools/new/source/")
    page = reply.content.decode()
    assert reply.status_code == 403
    assert "This page needs the editor role" in page and "with the <strong>viewer</strong> role" in page
    assert "ana-admin" in page and "Admin → Users" in page
    assert 'class="sidebar"' in page and "Sign out" in page  # the console's layout
    assert "/admin/" not in page  # a viewer is not offered the Django admin


def test_a_user_without_a_role_is_told_so_after_signing_in():
    make_user(None, username="newcomer")
    client = Client()
    reply = client.post("/login/", {"username": "newcomer", "password": PASSWORD}, follow=True)
    page = reply.content.decode()
    assert reply.status_code == 403
    assert "Your account has no role yet" in page and "Sign out newcomer" in page
    assert "manage.py createsuperuser" in page  # no admin exists yet: it says how to make one


def test_admin_add_user_asks_for_the_role():
    admin = signed_in(Client(), roles.ADMIN, is_superuser=True)
    form = admin.get("/admin/auth/user/add/").content.decode()
    assert 'name="role"' in form
    reply = admin.post(
        "/admin/auth/user/add/",
        {
            "username": "carla",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "role": roles.EDITOR,
            "_save": "1",
        },
    )
    assert reply.status_code == 302, reply.content.decode()[:2000]
    assert roles.role_of(get_user_model().objects.get(username="carla")) == roles.EDITOR
