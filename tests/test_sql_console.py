"""The SQL Console's pages, through a real warehouse worker and Redis, and the `sql` command's
use of the same check."""

from __future__ import annotations

import uuid
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse

from console.models import QueryRun
from pools.services import create_pool
from tests.helpers.firehose import change_record
from tests.helpers.pools import GUIDE_STEP_4, land_direct
from tests.helpers.pools import run_in_console as run
from tests.helpers.roles import make_user
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def maria(client):
    user = make_user("viewer", "maria", email="maria@example.com")
    client.force_login(user)
    return user


def test_the_console_needs_a_login(client):
    run_ = QueryRun.objects.create(
        user=get_user_model().objects.create_user("x", "x@example.com", "pw-12345678"), sql="SELECT 1"
    )
    for reply in (
        client.get(reverse("sql:console")),
        client.post(reverse("sql:run"), {"sql": "SELECT 1"}),
        client.get(reverse("sql:result", args=[run_.pk])),
    ):
        assert reply.status_code == 302 and reply["Location"].startswith("/login/")
    assert QueryRun.objects.count() == 1


def test_the_page_lists_the_pools_with_their_columns(client, maria, pool):
    page = client.get(reverse("sql:console")).content.decode()
    assert f'data-insert="{pool.name}"' in page
    assert 'data-insert="new_image"' in page and "LowCardinality(String)" in page
    assert f'href="{reverse("sql:console")}"' in page  # the menu entry


def test_the_guides_step_4_runs_verbatim_with_the_pool_name(client, maria, warehouse_worker, pool_name):
    pool = create_pool(pool_name)
    land_direct(pool, [change_record("o1", quantity=3), change_record("o2", "REMOVE", quantity=1)])
    wait_for(lambda: pool.deliveries.filter(status="loaded").exists(), message="load")

    html = run(
        client, GUIDE_STEP_4.replace("my_dynamo_orders_change_events", pool.name) + "\nORDER BY order_id"
    )
    assert "2 rows" in html
    assert '<th class="">order_id<div class="type">Dynamic</div></th>' in html
    assert "La Paloma" in html and "al pastor" in html  # JSON values, readable
    assert '<details class="json">' in html
    entry = QueryRun.objects.get()
    assert entry.user == maria and entry.sql.startswith("SELECT\n  -- The unique identifier")
    assert entry.sql.endswith(f"FROM {pool.name}\nORDER BY order_id")
    assert entry.row_count == 2 and entry.elapsed_ms > 0 and not entry.failed
    assert 'id="sql-history" hx-swap-oob="true"' in html and "2 rows ·" in html


def test_a_small_query_answers_in_the_post_itself(client, maria, warehouse_worker):
    client.post(reverse("sql:run"), {"sql": "SELECT 1"}, **HTMX)  # a warm worker
    reply = client.post(reverse("sql:run"), {"sql": "SELECT 41 + 1 AS answer"}, **HTMX).content.decode()
    assert "hx-get" not in reply and "answer<div" in reply and "UInt16" in reply and ">42<" in reply


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            "INSERT INTO some_pool (event_id) VALUES ('x')",
            "INSERT is not allowed: the SQL Console is readonly",
        ),
        ("DROP TABLE some_pool", "DROP is not allowed"),
        ("CREATE TABLE t (x Int8) ENGINE = Memory", "CREATE is not allowed"),
        ("ALTER TABLE some_pool DELETE WHERE 1", "ALTER is not allowed"),
        ("SET readonly = 0", "SET is not allowed"),
        ("SELECT * FROM system.tables", "system tables are not available in the SQL Console"),
        ("SELECT name FROM system.users", "system tables are not available in the SQL Console"),
        ("SELECT * FROM information_schema.tables", "information_schema is not available"),
        ("SELECT * FROM default.anything", "database default is not available"),
        ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "table function file() is not allowed"),
        ("SELECT * FROM url('http://127.0.0.1:1/', CSV)", "table function url() is not allowed"),
        ("SELECT * FROM s3('http://127.0.0.1:1/b/k')", "table function s3() is not allowed"),
        ("SELECT * FROM remote('127.0.0.1', system.one)", "table function remote() is not allowed"),
        ("SELECT 1; SELECT 2", "Only one statement can run at a time"),
    ],
)
def test_the_console_is_read_only_and_sees_only_the_pools(client, maria, warehouse_worker, sql, message):
    html = run(client, sql)
    assert "The query failed" in html and message in html, html
    entry = QueryRun.objects.get()
    assert entry.failed and message in entry.error


def test_a_syntax_error_shows_clickhouses_message_and_marks_the_position(client, maria, warehouse_worker):
    html = run(client, "SELECT number\r\nFROM numbers(3)\r\nWHERE number >")
    assert "Syntax error: failed at position 45 (end of query)" in html
    assert 'data-position="44"' in html  # characters, with the editor's line breaks
    assert "at line 3, column 15" in html
    assert '<span class="sql-lineno">3</span>WHERE number &gt;<mark> </mark>' in html


def test_the_result_is_cut_to_the_row_limit_and_says_so(client, maria, warehouse_worker, settings):
    html = run(client, "SELECT number FROM numbers(25000)")
    assert "10,000 rows" in html and "truncated to 10,000 rows" in html
    entry = QueryRun.objects.get()
    assert entry.truncated and entry.row_count == 10_000


def test_history_is_per_user(client, maria, warehouse_worker):
    run(client, "SELECT 'tacos de maria' AS x")
    mine = QueryRun.objects.get()
    page = client.get(reverse("sql:console")).content.decode()
    assert "tacos de maria" in page and f"?run={mine.pk}" in page

    other = make_user("viewer", "juan")
    client.force_login(other)
    page = client.get(reverse("sql:console")).content.decode()
    assert "tacos de maria" not in page and "Queries you run appear here" in page
    assert client.get(reverse("sql:result", args=[mine.pk]), **HTMX).status_code == 404
    assert client.get(reverse("sql:console") + f"?run={mine.pk}").status_code == 404


def test_history_lists_the_newest_first_and_loads_a_past_query(client, maria, warehouse_worker):
    run(client, "SELECT 'first' AS x")
    run(client, "SELECT nope")
    page = client.get(reverse("sql:console")).content.decode()
    assert page.index("SELECT nope") < page.index("SELECT &#x27;first&#x27; AS x")
    assert '<span class="badge badge-failed">error</span>' in page and "1 row ·" in page
    first = QueryRun.objects.get(sql__contains="first")
    page = client.get(reverse("sql:console") + f"?run={first.pk}").content.decode()
    assert ">SELECT &#x27;first&#x27; AS x</textarea>" in page
    assert "Its rows are not kept; run it again" in page


def test_without_javascript_the_run_redirects_to_a_page_that_shows_the_result(
    client, maria, warehouse_worker
):
    reply = client.post(reverse("sql:run"), {"sql": "SELECT 7 AS seven"})
    entry = QueryRun.objects.get()
    assert reply.status_code == 302 and reply["Location"] == f"{reverse('sql:console')}?run={entry.pk}"
    wait_for(lambda: b">7<" in client.get(reverse("sql:result", args=[entry.pk])).content, message="result")


def test_the_console_says_so_when_no_worker_runs(client, maria, monkeypatch):
    # A heartbeat key no worker beats under (another Redis database may be another suite's, on a
    # shared machine, with its worker beating in it).
    from console import warehouse_client

    monkeypatch.setattr(warehouse_client, "HEARTBEAT_KEY", f"shoal:test:no-worker:{uuid.uuid4().hex}")
    html = client.post(reverse("sql:run"), {"sql": "SELECT 1"}, **HTMX).content.decode()
    assert "No warehouse worker is running" in html
    assert QueryRun.objects.get().failed


def test_the_sql_command_applies_the_same_check(warehouse_worker):
    out = StringIO()
    call_command("sql", "SELECT number FROM numbers(2)", "--format", "json", stdout=out)
    assert '"rows": [[0], [1]]' in out.getvalue()
    for sql, message in [
        ("SELECT * FROM system.tables", "system tables are not available"),
        ("SELECT * FROM file('/etc/passwd')", r"table function file\(\) is not allowed"),
        ("SELECT 1; SELECT 2", "Only one statement"),
    ]:
        with pytest.raises(CommandError, match=message):
            call_command("sql", sql, stdout=StringIO())


def test_history_keeps_a_users_newest_runs(maria):
    from console.access.sql_views import HISTORY_KEEP

    QueryRun.objects.bulk_create(QueryRun(user=maria, sql=f"SELECT {i}") for i in range(HISTORY_KEEP + 3))
    QueryRun.prune(maria, keep=HISTORY_KEEP)
    assert QueryRun.objects.filter(user=maria).count() == HISTORY_KEEP
