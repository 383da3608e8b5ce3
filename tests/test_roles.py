"""Every URL of every urls.py × every role (anonymous, viewer, editor, admin): who gets in.

A URL missing from ROUTES fails test_every_url_is_in_the_table, so a new page cannot ship without
saying which role it needs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from console import roles
from pools.models import DataPool
from tests.helpers.roles import make_user, signed_in

PUBLIC, SIGNED_IN = "public", "signed-in"
# The HTTP API authenticates with API keys, not sessions: every signed-in role is refused (401)
# without a key; console/access/api/auth.py marks the view with the key scope it needs.
API_QUERY, API_MANAGE = "api:query", "api:manage"
# The API's reference: a signed-in user (any role) or any API key; nobody else.
SIGNED_IN_OR_KEY = "signed-in-or-key"
ORDER = [None, roles.VIEWER, roles.EDITOR, roles.ADMIN]

# route name → (method, path, role needed). Objects that do not exist answer 404 to whoever may
# see them, so POSTs here change nothing; pages of the real pool `roles_pool` answer 200.
ROUTES = {
    "pools:ingest": ("POST", "/ingest/firehose/nope", PUBLIC),
    "pools:list": ("GET", "/pools/", roles.VIEWER),
    "pools:create": ("GET", "/pools/new/", roles.EDITOR),
    "pools:create_step": ("GET", "/pools/new/name/", roles.EDITOR),
    "pools:detail": ("GET", "/pools/roles_pool/", roles.VIEWER),
    "pools:preview": ("GET", "/pools/nope/preview/", roles.VIEWER),
    "pools:preview_result": ("GET", "/pools/nope/preview/abc/", roles.VIEWER),
    "pools:rotate_key": ("POST", "/pools/nope/rotate-key/", roles.ADMIN),
    "pools:send_test_events": ("POST", "/pools/nope/test-events/", roles.EDITOR),
    "pools:delete": ("GET", "/pools/roles_pool/delete/", roles.EDITOR),
    "aws:connections": ("GET", "/aws/", roles.VIEWER),
    "aws:connection_new": ("GET", "/aws/connections/new/", roles.ADMIN),
    "aws:connection": ("GET", "/aws/connections/999/", roles.ADMIN),
    "aws:connection_test": ("POST", "/aws/connections/999/test/", roles.ADMIN),
    "aws:connection_delete": ("POST", "/aws/connections/999/delete/", roles.ADMIN),
    "aws:connect": ("GET", "/aws/pools/nope/connect/", roles.ADMIN),
    "aws:connect_step": ("GET", "/aws/pools/nope/connect/stream/", roles.ADMIN),
    "aws:pipeline": ("GET", "/aws/pipelines/999/", roles.VIEWER),
    "aws:pipeline_progress": ("GET", "/aws/pipelines/999/progress/", roles.VIEWER),
    "aws:pipeline_retry": ("POST", "/aws/pipelines/999/retry/", roles.ADMIN),
    "aws:pipeline_status": ("GET", "/aws/pipelines/999/status/", roles.VIEWER),
    "aws:pipeline_check": ("POST", "/aws/pipelines/999/check/", roles.EDITOR),
    "aws:pipeline_replay": ("POST", "/aws/pipelines/999/replay/", roles.EDITOR),
    "aws:pipeline_push": ("POST", "/aws/pipelines/999/push-endpoint/", roles.ADMIN),
    "aws:pipeline_teardown": ("GET", "/aws/pipelines/999/teardown/", roles.ADMIN),
    "aws:pipeline_sample_order": ("POST", "/aws/pipelines/999/sample-order/", roles.ADMIN),
    "aws:snapshot": ("GET", "/aws/pipelines/999/snapshot/", roles.VIEWER),
    "aws:snapshot_start": ("POST", "/aws/pipelines/999/snapshot/start/", roles.EDITOR),
    "aws:snapshot_resume": ("POST", "/aws/pipelines/999/snapshot/resume/", roles.EDITOR),
    "aws:snapshot_pause": ("POST", "/aws/pipelines/999/snapshot/pause/", roles.EDITOR),
    "aws:snapshot_cancel": ("POST", "/aws/pipelines/999/snapshot/cancel/", roles.EDITOR),
    "views_mv:list": ("GET", "/views/", roles.VIEWER),
    "views_mv:create": ("GET", "/views/new/", roles.EDITOR),
    "views_mv:create_step": ("GET", "/views/new/sql/", roles.EDITOR),
    "views_mv:detail": ("GET", "/views/nope/", roles.VIEWER),
    "views_mv:delete": ("POST", "/views/nope/delete/", roles.EDITOR),
    "views_mv:retry_backfill": ("POST", "/views/nope/backfill/retry/", roles.EDITOR),
    "views_mv:replica_check": ("POST", "/views/nope/replica-check/", roles.EDITOR),
    "views_mv:retry_failures": ("POST", "/views/nope/failures/retry/", roles.EDITOR),
    "views_mv:edit_sql": ("POST", "/views/nope/sql/", roles.EDITOR),
    "views_mv:rebuild": ("POST", "/views/nope/rebuild/", roles.EDITOR),
    "views_mv:transform": ("GET", "/views/from/nope/", roles.EDITOR),
    "sql:console": ("GET", "/sql/", roles.VIEWER),
    "sql:run": ("POST", "/sql/run/", roles.VIEWER),
    "sql:result": ("GET", "/sql/runs/999/", roles.VIEWER),
    "api_keys:list": ("GET", "/api-keys/", roles.ADMIN),
    "api_keys:create": ("POST", "/api-keys/new/", roles.ADMIN),
    "api_keys:revoke": ("POST", "/api-keys/999/revoke/", roles.ADMIN),
    "manage:run_sql": ("POST", "/api/v1/sql", API_QUERY),
    "api:clickhouse": ("GET", "/clickhouse/", API_QUERY),
    "api:clickhouse_ping": ("GET", "/clickhouse/ping", PUBLIC),
    "manage:openapi-json": ("GET", "/api/v1/openapi.json", SIGNED_IN_OR_KEY),
    "manage:openapi-view": ("GET", "/api/v1/docs", SIGNED_IN_OR_KEY),
    "manage:api-root": ("GET", "/api/v1/", PUBLIC),  # ninja's root: a 404
    "manage:list_pools": ("GET", "/api/v1/pools", API_MANAGE),
    "manage:create_data_pool": ("POST", "/api/v1/pools", API_MANAGE),
    "manage:get_pool": ("GET", "/api/v1/pools/nope", API_MANAGE),
    "manage:delete_data_pool": ("DELETE", "/api/v1/pools/nope", API_MANAGE),
    "manage:rotate_key": ("POST", "/api/v1/pools/nope/rotate-key", API_MANAGE),
    "manage:pool_statistics": ("GET", "/api/v1/pools/nope/statistics", API_MANAGE),
    "manage:list_deliveries": ("GET", "/api/v1/pools/nope/deliveries", API_MANAGE),
    "manage:list_quarantine": ("GET", "/api/v1/pools/nope/quarantine", API_MANAGE),
    "manage:replay_quarantine": ("POST", "/api/v1/pools/nope/quarantine/replay", API_MANAGE),
    "manage:list_views": ("GET", "/api/v1/views", API_MANAGE),
    "manage:create_view": ("POST", "/api/v1/views", API_MANAGE),
    "manage:get_view": ("GET", "/api/v1/views/nope", API_MANAGE),
    "manage:delete_view": ("DELETE", "/api/v1/views/nope", API_MANAGE),
    "manage:list_pipelines": ("GET", "/api/v1/pipelines", API_MANAGE),
    "manage:get_pipeline": ("GET", "/api/v1/pipelines/999", API_MANAGE),
    "manage:retry_pipeline": ("POST", "/api/v1/pipelines/999/retry", API_MANAGE),
    "manage:teardown_pipeline": ("POST", "/api/v1/pipelines/999/teardown", API_MANAGE),
    "setup": ("GET", "/setup/not-a-token/", PUBLIC),
    "login": ("GET", "/login/", PUBLIC),
    "healthz": ("GET", "/healthz", PUBLIC),
    "readyz": ("GET", "/readyz", PUBLIC),
    "metrics": ("GET", "/metrics", PUBLIC),  # public by design, behind METRICS_TOKEN
    "root": ("GET", "/", SIGNED_IN),
    "logout": ("POST", "/logout/", SIGNED_IN),  # last: it ends the session
}


def _names(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            if p.namespace == "admin":
                continue
            yield from _names(p.url_patterns, f"{prefix}{p.namespace}:" if p.namespace else prefix)
        elif isinstance(p, URLPattern):
            yield f"{prefix}{p.name}" if p.name else "root", p.callback


def test_every_url_is_in_the_table_and_every_view_names_its_role():
    for name, callback in _names(get_resolver().url_patterns):
        assert name in ROUTES, f"{name} is not in tests/test_roles.py ROUTES: which role may use it?"
        needed = ROUTES[name][2]
        if needed in ORDER:
            assert getattr(callback, "shoal_role", None) == needed, name
        elif needed == PUBLIC:
            assert getattr(callback, "login_required", True) is False, f"{name} must be login_not_required"
        elif needed in (API_QUERY, API_MANAGE):
            assert getattr(callback, "login_required", True) is False, f"{name} authenticates by key"
            assert f"api:{getattr(callback, 'shoal_api_scope', None)}" == needed, name
        elif needed == SIGNED_IN_OR_KEY:
            assert getattr(callback, "shoal_signed_in_or_key", False), name


@pytest.fixture
def roles_pool(transactional_db):
    return DataPool.objects.create(name="roles_pool", access_key="k" * 40)


@pytest.mark.parametrize("who", ORDER, ids=lambda r: r or "anonymous")
def test_each_role_gets_exactly_its_urls(who, roles_pool):
    client = Client()
    if who:
        signed_in(client, who)
    for name, (method, path, needed) in ROUTES.items():
        reply = getattr(client, method.lower())(path)
        to_login = reply.status_code == 302 and reply["Location"].startswith("/login/")
        if needed == PUBLIC:
            assert not to_login and reply.status_code != 403, (who, name, reply.status_code)
        elif needed in (API_QUERY, API_MANAGE):
            assert reply.status_code == 401, (who, name, reply.status_code)  # a session is no key
        elif needed == SIGNED_IN_OR_KEY:
            assert reply.status_code == (401 if who is None else 200), (who, name, reply.status_code)
        elif who is None:
            assert to_login, (name, reply.status_code)
        elif name == "logout":
            assert reply.status_code == 302 and not client.session.get("_auth_user_id"), reply.status_code
        elif needed == SIGNED_IN or ORDER.index(who) >= ORDER.index(needed):
            assert not to_login and reply.status_code != 403, (who, name, reply.status_code)
        else:
            assert reply.status_code == 403, (who, name, reply.status_code)


def test_the_api_reference_answers_a_key_and_sends_a_browser_to_sign_in(transactional_db):
    from console.access.api import keys

    key = keys.create_key("reader", "query").key
    for path in ("/api/v1/docs", "/api/v1/openapi.json"):
        assert Client().get(path, HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200
        assert Client().get(path, HTTP_AUTHORIZATION="Bearer shoal_wrong").status_code == 401
    browser = Client().get("/api/v1/docs", HTTP_ACCEPT="text/html")
    assert browser.status_code == 302 and browser["Location"].startswith("/login/?next=")


def _documented_public_urls() -> list[str]:
    """The first column of docs/security.md's table of URLs that need no sign-in."""
    text = (Path(settings.BASE_DIR) / "docs" / "security.md").read_text()
    table = text.split("<!-- urls-without-sign-in -->", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    return [url for row in rows for url in re.findall(r"`([^`]+)`", row)]


def _skipping_sign_in(patterns, prefix="", names=""):
    """(URL as the docs write it, route name) of every pattern whose view skips sign-in."""
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = f"{names}{p.namespace}:" if p.namespace else names
            yield from _skipping_sign_in(p.url_patterns, prefix + str(p.pattern), ns)
        elif getattr(p.callback, "login_required", True) is False:
            route = re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", prefix + str(p.pattern))
            route = route.replace("^", "").replace("/?$", "").replace("$", "")
            yield "/" + route, f"{names}{p.name}"


def test_docs_list_every_url_that_skips_sign_in_and_nothing_else():
    documented = _documented_public_urls()
    found = list(_skipping_sign_in(get_resolver().url_patterns))
    assert found and documented
    for url, name in found:
        exact = url in documented
        under = [d for d in documented if d.endswith("…") and url.startswith(d[:-1])]
        assert exact or under, f"{url} ({name}) skips sign-in but docs/security.md does not list it"
        if not exact:  # a prefix stands only for URLs that need an API key
            assert ROUTES[name][2] in (API_QUERY, API_MANAGE), f"{url} is not key-authenticated"
    urls = {url for url, _ in found}
    for doc in documented:
        assert doc in urls or doc.endswith("…") and any(u.startswith(doc[:-1]) for u in urls), doc


@pytest.mark.parametrize(
    ("who", "opens"), [(roles.VIEWER, False), (roles.EDITOR, False), (roles.ADMIN, True)]
)
def test_only_admins_open_the_django_admin(who, opens, transactional_db):
    client = signed_in(Client(), who)
    reply = client.get("/admin/pools/datapool/")
    assert (reply.status_code == 200) is opens, reply.status_code


def test_the_pages_hide_what_a_role_cannot_do(roles_pool):
    viewer = signed_in(Client(), roles.VIEWER).get("/pools/roles_pool/").content.decode()
    editor = signed_in(Client(), roles.EDITOR).get("/pools/roles_pool/").content.decode()
    admin = signed_in(Client(), roles.ADMIN).get("/pools/roles_pool/").content.decode()
    key = "k" * 40
    assert key not in viewer and key not in editor and key in admin
    assert "test-events" not in viewer and "test-events" in editor
    assert "Rotate" not in editor and "Rotate" in admin
    assert "/delete/" not in viewer and "/delete/" in editor
    pools_page = signed_in(Client(), roles.VIEWER).get("/pools/").content.decode()
    assert "/pools/new/" not in pools_page
    assert "/pools/new/" in signed_in(Client(), roles.EDITOR).get("/pools/").content.decode()


def test_set_role_command(transactional_db):
    from io import StringIO

    from django.core.management import call_command

    user = make_user(None, "carmen")
    call_command("set_role", "carmen", "editor", stdout=StringIO())
    user.refresh_from_db()
    assert roles.role_of(user) == roles.EDITOR and not user.is_staff
    call_command("set_role", "carmen", "admin", stdout=StringIO())
    user = type(user).objects.get(pk=user.pk)
    assert roles.role_of(user) == roles.ADMIN and user.is_staff


def test_the_aws_endpoint_field_exists_only_when_an_emulator_is_allowed(transactional_db, settings):
    client = signed_in(Client(), roles.ADMIN)
    settings.AWS_ALLOW_EMULATOR = False
    assert 'name="endpoint_url"' not in client.get("/aws/connections/new/").content.decode()
    settings.AWS_ALLOW_EMULATOR = True
    assert 'name="endpoint_url"' in client.get("/aws/connections/new/").content.decode()


def test_a_stored_aws_endpoint_is_ignored_unless_an_emulator_is_allowed(settings):
    from pools.aws.clients import endpoint_url
    from pools.aws.models import AwsConnection

    connection = AwsConnection(name="x", region="us-east-1", endpoint_url="http://attacker.example:8080")
    settings.AWS_ALLOW_EMULATOR = False
    assert endpoint_url(connection) is None
    settings.AWS_ALLOW_EMULATOR = True
    assert endpoint_url(connection) == "http://attacker.example:8080"


def test_the_admin_shows_a_pools_table_layout_read_only(roles_pool):
    client = signed_in(Client(), roles.ADMIN)
    page = client.get(f"/admin/pools/datapool/{roles_pool.pk}/change/").content.decode()
    assert page.count('name="engine"') == 0 and page.count('name="sorting_key"') == 0
    assert page.count('name="partition_key"') == 0 and page.count('name="columns"') == 0
