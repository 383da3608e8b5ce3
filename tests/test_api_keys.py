"""API keys: created by an admin in the console and by `create_api_key`, shown once, stored
hashed, listed in the console and the admin, revoked."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from console import roles
from console.access.api import keys
from console.access.api.models import ApiKey
from pools.services import create_pool
from tests.helpers.roles import signed_in


def test_create_api_key_command_prints_json_once_and_stores_only_a_hash(transactional_db):
    create_pool("orders_api")
    out = StringIO()
    call_command(
        "create_api_key",
        "bi",
        "--scope",
        "query",
        "--pools",
        "orders_api",
        "--expires",
        "2099-01-01",
        "--json",
        stdout=out,
    )
    data = json.loads(out.getvalue())
    assert data["name"] == "bi" and data["scope"] == "query" and data["pools"] == ["orders_api"]
    assert data["key"].startswith("shoal_") and data["expires_at"].startswith("2099-01-01")
    stored = ApiKey.objects.get(name="bi")
    assert data["key"] not in json.dumps(
        [getattr(stored, f.attname) for f in ApiKey._meta.fields], default=str
    )
    assert stored.key_hash == keys.hash_key(data["key"])
    assert keys.authenticate(data["key"], name="bi") == stored
    assert stored.readable_pools() == ["orders_api"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x", "--scope", "query", "--pools", "nope"], "There is no Data Pool nope"),
        (["x", "--scope", "manage", "--pools", "orders_api"], "Only query keys"),
        (["bad name", "--scope", "query"], "letters, digits"),
        (["x", "--scope", "query", "--expires", "2001-01-01"], "in the future"),
    ],
)
def test_create_api_key_command_says_what_is_wrong(transactional_db, args, message):
    create_pool("orders_api")
    with pytest.raises(CommandError, match=message):
        call_command("create_api_key", *args, stdout=StringIO())


def test_an_admin_creates_lists_and_revokes_keys_in_the_console(transactional_db):
    create_pool("orders_api")
    admin = signed_in(Client(), roles.ADMIN)
    created = admin.post("/api-keys/new/", {"name": "grafana", "scope": "query", "pools": ["orders_api"]})
    # Post, then redirect: a reload or Back shows the list, and makes no second key.
    assert created.status_code == 302 and created["Location"] == "/api-keys/"
    html = admin.get("/api-keys/").content.decode()
    key = re.search(r'data-testid="new-key">([^<]+)<', html).group(1)
    assert 'data-copy="new-key-value"' in html  # a Copy button, as the pool page has
    api_key = keys.authenticate(key, name="grafana")
    assert api_key.readable_pools() == ["orders_api"] and api_key.created_by is not None
    listing = admin.get("/api-keys/").content.decode()  # shown once
    assert "grafana" in listing and key not in listing and api_key.prefix in listing
    assert key not in str(dict(admin.session))  # waited in the session encrypted only
    duplicate = admin.post("/api-keys/new/", {"name": "grafana", "scope": "query"})
    assert duplicate.status_code == 400 and "already exists" in duplicate.content.decode()
    assert admin.post(f"/api-keys/{api_key.pk}/revoke/").status_code == 302
    with pytest.raises(keys.KeyRefused, match="revoked"):
        keys.authenticate(key)
    assert signed_in(Client(), roles.EDITOR).get("/api-keys/").status_code == 403


def test_a_field_hidden_for_the_chosen_scope_is_left_out(transactional_db):
    """Pools ticked for a query key, then the scope switched to manage: the pools are hidden and
    were still sent, and the page refused the key for a field the admin could not see."""
    create_pool("orders_api")
    admin = signed_in(Client(), roles.ADMIN)
    made = admin.post(
        "/api-keys/new/", {"name": "ops", "scope": "manage", "role": "admin", "pools": ["orders_api"]}
    )
    assert made.status_code == 302, made.content.decode()[:300]
    api_key = ApiKey.objects.get(name="ops")
    assert (api_key.scope, api_key.role, api_key.limited_pools.count()) == ("manage", "admin", 0)
    # And the other way: a role chosen for a manage key, then the scope switched to query.
    reader = admin.post("/api-keys/new/", {"name": "bi", "scope": "query", "role": "admin"})
    assert reader.status_code == 302 and ApiKey.objects.get(name="bi").role == "editor"


def test_the_django_admin_lists_keys_and_revokes_them(transactional_db):
    new = keys.create_key("etl", "manage")
    admin = signed_in(Client(), roles.ADMIN)
    listing = admin.get("/admin/api/apikey/")
    assert listing.status_code == 200 and "etl" in listing.content.decode()
    admin.post("/admin/api/apikey/", {"action": "revoke", "_selected_action": [new.api_key.pk]})
    assert ApiKey.objects.get(pk=new.api_key.pk).revoked


def test_create_api_key_command_makes_an_admin_key_when_asked(transactional_db):
    out = StringIO()
    call_command("create_api_key", "root", "--scope", "manage", "--role", "admin", "--json", stdout=out)
    assert json.loads(out.getvalue())["role"] == "admin"
    stored = ApiKey.objects.get(name="root")
    assert stored.role == "admin" and stored.has_role(roles.ADMIN)


def test_create_api_key_command_refuses_a_role_for_a_query_key(transactional_db):
    with pytest.raises(CommandError, match="Only manage keys have a role"):
        call_command("create_api_key", "x", "--scope", "query", "--role", "admin", stdout=StringIO())
