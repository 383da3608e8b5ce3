"""The Create Data Pool wizard (pools/wizard.py): plain forms without JavaScript, and htmx."""

from __future__ import annotations

import re

import pytest
from django.urls import NoReverseMatch, reverse

from pools.models import DataPool
from pools.services import create_pool
from tests.helpers.firehose import change_record
from tests.helpers.pools import land_direct
from tests.helpers.roles import make_user
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
AUTH = {"user": "firehose", "password": "correct-horse-battery", "confirm": "correct-horse-battery"}
APPEND_ONLY = {"mode": "append_only", "time_column": "_received_at", "filters": ["table_name"]}
MUTABLE = {"mode": "mutable", "unique": ["event_id"], "time_column": "", "filters": [], "version": ""}
STEPS = ("source", "schema", "auth", "table", "confirm", "name")


def url(step: str) -> str:
    return reverse("pools:create_step", args=[step])


@pytest.fixture
def maria(client):
    # An admin: the done page shows the access key to admins only (docs/security.md).
    user = make_user("admin", "maria", email="maria@example.com")
    client.force_login(user)
    return client


def walk(client, until: str, table: dict | None = None) -> None:
    """Answer every step before `until` with plain POSTs, as a browser without JavaScript does."""
    answers = {
        "source": {"source": "dynamodb"},
        "schema": {},
        "auth": AUTH,
        "table": table or APPEND_ONLY,
        "confirm": {},
    }
    for step in STEPS[: STEPS.index(until)]:
        reply = client.post(url(step), answers[step])
        assert reply.status_code == 302, f"{step}: {errors(reply)}"
        assert reply["Location"] == url(STEPS[STEPS.index(step) + 1])


def errors(reply) -> list[str]:
    return re.findall(r'class="field-error"[^>]*>(.*?)</p>', reply.content.decode())


def finish(client, name="orders_changes", **extra):
    client.get(url("name"))  # the page hands out the form's one-time token
    token = client.session["pool_wizard"]["token"]
    return client.post(url("name"), {"name": name, "description": "Taqueria orders", "token": token, **extra})


def wizard_state(client) -> dict:
    return client.session.get("pool_wizard", {})


# --- The whole wizard --------------------------------------------------------------------------


def test_the_console_pages_of_the_wizard_need_a_login(client):
    for address in (reverse("pools:create"), url("source"), url("name"), url("done")):
        reply = client.get(address)
        assert reply.status_code == 302 and reply["Location"].startswith("/login/")


def test_the_pool_list_links_to_the_wizard(maria):
    page = maria.get(reverse("pools:list")).content.decode()
    assert f'href="{reverse("pools:create")}"' in page and "Create Data Pool" in page


def test_it_starts_at_the_source(maria):
    reply = maria.get(reverse("pools:create"))
    assert reply.status_code == 302 and reply["Location"] == url("source")
    page = maria.get(url("source")).content.decode()
    assert "Select your data source" in page and 'value="dynamodb" checked' in page
    for soon in ("Kafka", "Webhook", "Amazon S3", "Snowflake"):
        assert soon in page
    assert page.count('<span class="badge">Not yet available</span>') == 4
    assert page.count(" disabled>") == 4  # greyed out and not selectable


def test_the_whole_wizard_with_plain_forms_creates_one_pool(maria):
    walk(maria, "name")
    assert not DataPool.objects.exists()  # nothing before the last step

    reply = finish(maria)
    assert reply.status_code == 302 and reply["Location"] == url("done")
    pool = DataPool.objects.get()
    assert (pool.name, pool.description, pool.kind) == ("orders_changes", "Taqueria orders", "dynamodb")
    assert pool.engine == "MergeTree"
    assert pool.sorting_key == "table_name, _received_at"
    assert pool.partition_key == "toYYYYMM(_received_at)"
    assert pool.timestamp_column == "_received_at" and pool.version_column == ""
    assert pool.basic_auth_user == "firehose" and pool.check_basic_auth("firehose", "correct-horse-battery")
    # The answers (the password above all) are gone from the session.
    assert "auth" not in wizard_state(maria) and "correct-horse-battery" not in str(dict(maria.session))

    done = maria.get(url("done")).content.decode()
    assert "Your Data Pool is ready" in done
    assert pool.endpoint_url() in done and pool.access_key in done
    assert done.count("Copy</button>") == 2 and 'data-copy="access-key"' in done
    assert "shoal/shoal.js" in done  # where the copy buttons' behaviour lives
    assert ">firehose</code>" in done
    assert "7200" in done and "Not enabled" in done and "1 MiB" in done
    try:  # the Connect DynamoDB wizard, where it exists
        assert reverse("aws:connect", args=[pool.name]) in done
    except NoReverseMatch:
        assert "Coming soon" in done
    assert pool.get_absolute_url() in done
    test_events = reverse("pools:send_test_events", args=[pool.name])
    assert f'action="{test_events}"' in done


def test_mutable_data_makes_a_replacing_merge_tree(maria):
    walk(maria, "confirm", table={**MUTABLE, "filters": ["table_name"], "time_column": "_received_at"})
    page = maria.get(url("confirm")).content.decode()
    assert "REPLACING_MERGE_TREE" in page and "ReplacingMergeTree" in page
    assert "table_name, event_id" in page
    walk(maria, "name", table={**MUTABLE, "filters": ["table_name"], "time_column": "_received_at"})
    assert finish(maria).status_code == 302
    pool = DataPool.objects.get()
    assert (pool.engine, pool.sorting_key, pool.timestamp_column) == (
        "ReplacingMergeTree",
        "table_name, event_id",
        "_received_at",
    )


def test_a_version_column_goes_into_the_engine(maria):
    walk(maria, "name", table={**MUTABLE, "version": "approximate_creation_date_time"})
    assert finish(maria).status_code == 302
    pool = DataPool.objects.get()
    assert pool.engine == "ReplacingMergeTree(approximate_creation_date_time)"
    assert pool.version_column == "approximate_creation_date_time"


def test_the_confirmation_shows_the_settings_before_anything_is_created(maria):
    walk(maria, "confirm")
    page = maria.get(url("confirm")).content.decode()
    assert "Confirm table settings" in page
    assert "MERGE_TREE" in page and "<code>toYYYYMM(_received_at)</code>" in page
    assert '<code class="sorting-key">table_name, _received_at</code>' in page
    assert "Default timestamp" in page
    assert not DataPool.objects.exists()


def test_the_schema_step_shows_the_change_event_columns(maria):
    walk(maria, "schema")
    page = maria.get(url("schema")).content.decode()
    assert "Define schema" in page and "Materialized Views" in page
    for column in ("event_id", "event_name", "new_image", "approximate_creation_date_time", "_received_at"):
        assert f"<code>{column}</code>" in page
    assert "DateTime64(3, &#x27;UTC&#x27;)" in page


def test_the_table_step_preselects_append_only_and_the_time_column(maria):
    walk(maria, "table")
    page = maria.get(url("table")).content.decode()
    assert re.search(r'value="append_only" checked', page)
    assert re.search(r'name="time_column" value="_received_at"[^>]*checked', page)
    assert "change events" in page and "Append-only" in page
    # JSON columns cannot be in a key: they are not offered.
    assert 'value="new_image"' not in page and 'value="event_id"' in page
    for question in (
        "Which columns uniquely identify your records?",
        "Will you query your data by time?",
        "Are there columns you always filter by?",
        "Is there an updated_at or version column?",
    ):
        assert question in page


# --- htmx ---------------------------------------------------------------------------------------


def test_htmx_requests_get_the_step_alone(maria):
    full = maria.get(url("source")).content.decode()
    assert "<html" in full and 'id="wizard-step"' in full
    partial = maria.get(url("source"), **HTMX)
    html = partial.content.decode()
    assert "<html" not in html and 'id="wizard-step"' not in html
    assert "wizard-progress" in html and "Select your data source" in html
    assert "<title>Select your data source" in html
    assert "HX-Request" in partial["Vary"]
    # A history restore (back/forward without a cached page) needs the whole page.
    restore = maria.get(url("source"), HTTP_HX_HISTORY_RESTORE_REQUEST="true", **HTMX)
    assert "<html" in restore.content.decode()


def test_every_htmx_link_and_form_also_works_without_javascript(maria):
    walk(maria, "name")
    for step in STEPS:
        page = maria.get(url(step)).content.decode()
        for tag in re.findall(r"<a [^>]*hx-get[^>]*>", page):
            assert re.search(r'href="([^"]+)"', tag).group(1) == re.search(r'hx-get="([^"]+)"', tag).group(1)
        for tag in re.findall(r"<form [^>]*hx-post[^>]*>", page):
            action = re.search(r'action="([^"]+)"', tag).group(1)
            assert action == re.search(r'hx-post="([^"]+)"', tag).group(1)
            assert 'method="post"' in tag


def test_an_htmx_post_answers_with_the_next_step_and_its_url(maria):
    reply = maria.post(url("source"), {"source": "dynamodb"}, **HTMX)
    assert reply.status_code == 200
    assert reply["HX-Push-Url"] == url("schema")
    html = reply.content.decode()
    assert "Define schema" in html and "<html" not in html


def test_the_whole_wizard_through_htmx(maria):
    answers = {
        "source": {"source": "dynamodb"},
        "schema": {},
        "auth": AUTH,
        "table": APPEND_ONLY,
        "confirm": {},
    }
    for step, data in answers.items():
        reply = maria.post(url(step), data, **HTMX)
        following = STEPS[STEPS.index(step) + 1]
        assert reply.status_code == 200 and reply["HX-Push-Url"] == url(following), step
    token = re.search(r'name="token" value="([^"]+)"', reply.content.decode()).group(1)
    done = maria.post(url("name"), {"name": "orders_changes", "token": token}, **HTMX)
    assert done.status_code == 200 and done["HX-Push-Url"] == url("done")
    pool = DataPool.objects.get()
    html = done.content.decode()
    assert "<html" not in html and 'hx-history="false"' in html
    assert pool.endpoint_url() in html and pool.access_key in html


def test_each_step_has_the_progress_and_a_back_link(maria):
    walk(maria, "name")
    for number, step in enumerate(STEPS[1:], start=2):
        html = maria.get(url(step), **HTMX).content.decode()
        back = url(STEPS[number - 2])
        assert f'href="{back}" hx-get="{back}"' in html, step
        assert html.count("<li class=") == 6
        assert 'aria-current="step"' in html
    progress = maria.get(url("confirm")).content.decode()
    current = re.search(r'<li class="current" aria-current="step">(.*?)</li>', progress, re.S).group(1)
    assert "Table settings" in current


# --- Validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["plain", "htmx"])
def test_passwords_that_differ_are_shown_next_to_the_field(maria, headers):
    walk(maria, "auth")
    reply = maria.post(url("auth"), {**AUTH, "confirm": "something-else-entirely"}, **headers)
    assert reply.status_code == 200
    html = reply.content.decode()
    assert re.search(
        r'id="id_confirm".*?<p class="field-error" id="confirm-error">The passwords do not match', html, re.S
    )
    assert 'value="firehose"' in html  # the user is kept
    assert "auth" not in wizard_state(maria)
    assert maria.get(url("table"))["Location"] == url("auth")


@pytest.mark.parametrize(
    "data, message",
    [
        ({**AUTH, "user": ""}, "Enter a user."),
        ({**AUTH, "user": "fire hose"}, "Use letters, digits, dots, underscores and hyphens."),
        ({**AUTH, "password": "short", "confirm": "short"}, "Use at least 12 characters."),
        ({**AUTH, "password": "", "confirm": ""}, "Enter a password."),
    ],
)
def test_the_authentication_is_validated(maria, data, message):
    walk(maria, "auth")
    reply = maria.post(url("auth"), data)
    assert reply.status_code == 200 and message in errors(reply)


def test_coming_back_to_authentication_keeps_the_password(maria):
    walk(maria, "table")
    page = maria.get(url("auth")).content.decode()
    assert "leave both fields blank to keep it" in page and "correct-horse-battery" not in page
    reply = maria.post(url("auth"), {"user": "firehose2", "password": "", "confirm": ""})
    assert reply.status_code == 302
    assert wizard_state(maria)["auth"] == {"user": "firehose2", "password": "correct-horse-battery"}


def test_a_source_that_is_not_available_is_refused(maria):
    reply = maria.post(url("source"), {"source": "kafka"})
    assert reply.status_code == 200 and "That source is not available." in errors(reply)


def test_mutable_data_needs_the_columns_that_identify_a_record(maria):
    walk(maria, "table")
    reply = maria.post(url("table"), {**MUTABLE, "unique": []}, **HTMX)
    assert reply.status_code == 200
    assert "Mutable data needs the columns that uniquely identify a record." in errors(reply)
    assert "table" not in wizard_state(maria)


def test_a_json_column_cannot_be_chosen(maria):
    walk(maria, "table")
    reply = maria.post(url("table"), {**APPEND_ONLY, "filters": ["new_image"]})
    assert reply.status_code == 200 and any("new_image" in e for e in errors(reply))


@pytest.mark.parametrize(
    "name, message",
    [
        ("9lives", "Use letters, digits and underscores"),
        ("select", "is reserved"),
        ("taken_pool", "already exists"),
        ("", "Enter a name."),
    ],
)
def test_a_bad_or_taken_name_is_shown_next_to_the_field(maria, name, message):
    create_pool("taken_pool")
    walk(maria, "name")
    for headers in ({}, HTMX):
        maria.get(url("name"))
        token = maria.session["pool_wizard"]["token"]
        reply = maria.post(url("name"), {"name": name, "token": token}, **headers)
        assert reply.status_code == 200
        html = reply.content.decode()
        assert re.search(
            r'<div id="name-message"[^>]*><p class="field-error">[^<]*' + re.escape(message), html
        )
    assert DataPool.objects.count() == 1


def test_the_name_is_validated_as_it_is_typed(maria):
    create_pool("taken_pool")
    walk(maria, "name")
    check = {"HTTP_HX_TRIGGER_NAME": "name", **HTMX}

    taken = maria.get(url("name"), {"name": "taken_pool"}, **check)
    html = taken.content.decode()
    assert taken.status_code == 200 and html.startswith('<div id="name-message"')
    assert "already exists" in html and "wizard-progress" not in html

    assert "Use letters, digits" in maria.get(url("name"), {"name": "bad-name"}, **check).content.decode()
    good = maria.get(url("name"), {"name": "orders_changes"}, **check).content.decode()
    assert "is available" in good and "field-error" not in good
    assert DataPool.objects.count() == 1

    page = maria.get(url("name")).content.decode()
    assert re.search(
        r'hx-get="/pools/new/name/" hx-trigger="keyup changed delay:300ms" hx-target="#name-message"', page
    )


# --- Guards, double submits, leaving -------------------------------------------------------------


def test_a_step_whose_earlier_steps_are_not_done_sends_to_the_first_missing_one(maria):
    for step in STEPS[1:] + ("done",):
        reply = maria.get(url(step))
        assert reply.status_code == 302 and reply["Location"] == url("source"), step
    maria.post(url("source"), {"source": "dynamodb"})
    maria.post(url("schema"))
    assert maria.get(url("confirm"))["Location"] == url("auth")
    assert maria.post(url("name"), {"name": "sneaky", "token": "x"})["Location"] == url("auth")
    # Through htmx, the missing step itself comes back, with its URL.
    reply = maria.get(url("confirm"), **HTMX)
    assert reply.status_code == 200 and reply["HX-Push-Url"] == url("auth")
    assert reply["HX-Retarget"] == "#wizard-step"
    assert "Configure authentication" in reply.content.decode()
    assert not DataPool.objects.exists()


def test_changing_the_table_settings_asks_for_confirmation_again(maria):
    walk(maria, "name")
    maria.post(url("table"), {**MUTABLE})
    assert maria.get(url("name"))["Location"] == url("confirm")


def test_an_unknown_step_is_not_found(maria):
    assert maria.get(url("nope")).status_code == 404


def test_a_second_submit_of_the_last_step_creates_no_second_pool(maria):
    walk(maria, "name")
    first = finish(maria)
    token = wizard_state(maria)["token"]
    again = maria.post(url("name"), {"name": "orders_changes", "description": "", "token": token})
    assert first["Location"] == again["Location"] == url("done")
    assert DataPool.objects.count() == 1
    htmx_again = maria.post(url("name"), {"name": "orders_changes", "token": token}, **HTMX)
    assert htmx_again["HX-Push-Url"] == url("done")
    html = htmx_again.content.decode()
    assert "Your Data Pool is ready" in html and DataPool.objects.get().access_key in html
    assert DataPool.objects.count() == 1


def test_a_submit_racing_the_first_one_shows_the_pool_it_made(maria):
    # Two requests that read the session before either saved it: the second finds the name taken
    # by the pool the first one created with the same credentials, and shows it.
    walk(maria, "name")
    maria.get(url("name"))
    session = maria.session
    before = dict(session["pool_wizard"])
    data = {"name": "orders_changes", "description": "", "token": before["token"]}
    assert maria.post(url("name"), data)["Location"] == url("done")
    session = maria.session
    session["pool_wizard"] = before
    session.save()
    again = maria.post(url("name"), data)
    assert again.status_code == 302 and again["Location"] == url("done")
    assert DataPool.objects.count() == 1
    assert wizard_state(maria)["created"] == DataPool.objects.get().pk


def test_a_pool_of_the_same_name_made_by_someone_else_is_not_shown(maria):
    walk(maria, "name")
    maria.get(url("name"))
    create_pool("orders_changes", basic_auth_user="firehose", basic_auth_password="another-password-1")
    reply = finish(maria)
    assert reply.status_code == 200 and any("already exists" in e for e in errors(reply))
    assert "Your Data Pool is ready" not in reply.content.decode()
    assert "created" not in wizard_state(maria) and DataPool.objects.count() == 1


def test_a_stale_final_form_is_refused(maria):
    walk(maria, "name")
    maria.get(url("name"))
    reply = maria.post(url("name"), {"name": "orders_changes", "token": "stale"})
    assert reply.status_code == 200 and "out of date" in reply.content.decode()
    assert not DataPool.objects.exists()


def test_after_creating_a_pool_the_wizard_starts_afresh(maria):
    walk(maria, "name")
    finish(maria)
    assert maria.get(url("auth"))["Location"] == url("done")  # this run has finished
    assert maria.get(reverse("pools:create"))["Location"] == url("source")
    assert maria.get(url("done"))["Location"] == url("source")
    assert maria.get(url("schema"))["Location"] == url("source")


def test_opening_the_first_step_after_creating_a_pool_starts_a_new_one(maria):
    walk(maria, "name")
    finish(maria)
    page = maria.get(url("source"))  # a bookmark, or "Create Data Pool" typed again
    assert page.status_code == 200
    assert "Your Data Pool is ready" not in page.content.decode()
    assert maria.get(url("done"))["Location"] == url("source")  # that run is forgotten


def test_the_wizard_resumes_where_it_was_left_and_cancel_forgets_it(maria):
    walk(maria, "table")
    assert maria.get(reverse("pools:create"))["Location"] == url("table")
    reply = maria.post(reverse("pools:create"))
    assert reply["Location"] == reverse("pools:list")
    assert maria.get(url("table"))["Location"] == url("source")


def test_answers_left_alone_for_hours_are_forgotten(maria):
    walk(maria, "table")
    session = maria.session
    session["pool_wizard"] = {**session["pool_wizard"], "saved_at": 1}
    session.save()
    assert maria.get(url("table"))["Location"] == url("source")
    assert "pool_wizard" not in maria.session


def test_the_done_page_of_a_deleted_pool_starts_over(maria):
    walk(maria, "name")
    finish(maria)
    DataPool.objects.all().delete()
    assert maria.get(url("done"))["Location"] == url("source")


# --- End to end --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_mutable_pool_made_by_the_wizard_loads_deliveries(maria, warehouse_worker):
    # ReplacingMergeTree(version) with a partition and the deduplication window: valid DDL, and it loads.
    table = {
        **MUTABLE,
        "filters": ["table_name"],
        "time_column": "_received_at",
        "version": "approximate_creation_date_time",
    }
    walk(maria, "name", table=table)
    finish(maria, name="orders_latest")
    pool = DataPool.objects.get()
    assert pool.engine == "ReplacingMergeTree(approximate_creation_date_time)"
    land_direct(pool, [change_record("order-1"), change_record("order-2", "MODIFY")])
    wait_for(lambda: pool.deliveries.filter(status="loaded").exists(), message="load")
    pool.refresh_from_db()
    assert pool.record_count == 2 and pool.status != DataPool.Status.FAILED


def test_the_done_page_warns_that_firehose_needs_https(maria, settings):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    walk(maria, "name")
    finish(maria)
    done = maria.get(url("done")).content.decode()
    assert "Firehose cannot deliver here yet" in done and "https://" in done
    settings.PUBLIC_BASE_URL = "https://shoal.example.com"
    assert "Firehose cannot deliver here yet" not in maria.get(url("done")).content.decode()


@pytest.mark.parametrize(("role", "shown"), [("editor", False), ("admin", True)])
def test_the_done_page_shows_the_key_to_admins_only(role, shown, transactional_db):
    from django.template.loader import render_to_string
    from django.test import RequestFactory

    pool = DataPool.objects.create(name="juans_pool", access_key="k" * 40)
    request = RequestFactory().get("/")
    request.user = make_user(role)
    html = render_to_string("pools/wizard/done.html", {"pool": pool}, request=request)
    assert (pool.access_key in html) is shown
    assert ("Only an admin can reveal the key" in html) is not shown


def test_the_wizard_follows_the_steps_of_the_chosen_source_type(maria, monkeypatch):
    # A source type without a schema step (pools/sources/): its runs go from source to auth.
    import dataclasses

    from pools import sources

    default = sources.get(sources.DEFAULT)
    lean = dataclasses.replace(default, wizard_steps=tuple(s for s in STEPS if s != "schema"))
    monkeypatch.setitem(sources.SOURCE_TYPES, default.key, lean)
    reply = maria.post(url("source"), {"source": default.key})
    assert reply["Location"] == url("auth")
    assert maria.get(url("schema"))["Location"] == url("auth")  # not a step of this run
    html = maria.get(url("auth"), **HTMX).content.decode()
    assert html.count("<li class=") == 5 and f'href="{url("source")}" hx-get' in html
