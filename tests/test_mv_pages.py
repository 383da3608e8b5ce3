"""Materialized View pages tell the truth: names, key columns, backfill, SQL, destination."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse

from pools.models import DataPool
from tests.helpers.aws import make_connection, make_pipeline
from tests.helpers.firehose import change_record
from tests.helpers.pools import GUIDE_STEP_4, land_direct
from tests.helpers.roles import signed_in
from tests.helpers.waiting import wait_for
from views_mv import services
from views_mv.models import Backfill

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def maria(client):
    return signed_in(client, "editor", username="maria")


@pytest.fixture
def loaded_pool(pool, warehouse_worker):
    land_direct(pool, [change_record(f"o{i}") for i in range(3)])
    wait_for(lambda: DataPool.objects.get(pk=pool.pk).record_count == 3, message="load")
    return pool


def step(name: str) -> str:
    return reverse("views_mv:create_step", args=[name])


def through_sql(client, pool, sql: str | None = None):
    reply = client.post(
        step("sql"),
        {"sql": sql or GUIDE_STEP_4.replace("my_dynamo_orders_change_events", pool.name), "action": "next"},
    )
    assert reply.status_code == 302, reply.content.decode()[-2000:]


def table(client, **answers):
    """Post the table step with the inferred column types the page offers."""
    page = client.get(step("table")).content.decode()
    types = dict(re.findall(r'name="(type__[^"]+)" value="([^"]*)"', page))
    return client.post(step("table"), {**{k: html.unescape(v) for k, v in types.items()}, **answers})


def test_the_suggested_names_come_from_the_dynamodb_table_of_the_events(maria, loaded_pool):
    through_sql(maria, loaded_pool)
    page = maria.get(step("destination")).content.decode()
    assert 'value="dynamodb_orders"' in page  # the events' table_name, as the guide writes it


def test_the_suggested_names_come_from_the_pipeline_when_there_is_one(maria, loaded_pool, settings):
    connection = make_connection("http://127.0.0.1:1")
    make_pipeline(loaded_pool, type("Aws", (), {"connection": connection})(), "taco_orders")
    through_sql(maria, loaded_pool)
    assert 'value="dynamodb_taco_orders"' in maria.get(step("destination")).content.decode()
    maria.post(step("destination"), {"kind": "new", "new_name": "dynamodb_taco_orders"})
    table(maria, mode="mutable", unique=["order_id"], time_column="timestamp")
    page = maria.get(step("confirm")).content.decode()
    assert 'value="flattened_dynamodb_taco_orders_materialized_view"' in page


def test_the_destination_offers_only_what_it_can_do(maria, loaded_pool):
    through_sql(maria, loaded_pool)
    page = maria.get(step("destination")).content.decode()
    # No view-fed pool exists yet: no "Existing" choice and no empty select.
    assert 'name="existing"' not in page and "---------" not in page
    reply = maria.post(step("destination"), {"kind": "new", "new_name": loaded_pool.name})
    text = reply.content.decode()
    assert "is the view&#x27;s source" in text and "choose “Existing" not in text


def test_a_null_key_column_is_refused_in_the_wizard(maria, loaded_pool):
    sql = f"SELECT keys.order_id.S AS order_id, new_image.discount.N AS discount FROM {loaded_pool.name}"
    through_sql(maria, loaded_pool, sql)
    maria.post(step("destination"), {"kind": "new", "new_name": f"t_{loaded_pool.name}"})
    reply = table(maria, mode="mutable", unique=["discount"], time_column="")
    assert reply.status_code == 200
    assert "discount is NULL in 3 of the 3 rows sampled" in reply.content.decode()


def test_the_view_page_says_queued_from_the_first_render_and_shows_the_sql_as_written(maria, loaded_pool):
    sql = GUIDE_STEP_4.replace("my_dynamo_orders_change_events", loaded_pool.name)
    mv = services.create_mv(
        f"v_{loaded_pool.name}",
        sql,
        target_pool=f"t_{loaded_pool.name}",
        mutable=True,
        unique=["order_id"],
        time_column="timestamp",
        backfill=True,
    )
    page = maria.get(mv.get_absolute_url()).content.decode()
    assert "not requested" not in page
    progress = page[page.index('id="mv-progress"') : page.index("</dl>", page.index('id="mv-progress"'))]
    assert any(state in progress for state in ("Queued", "Pending ·", "Running ·", "Done ·")), progress
    written = page[
        page.index('class="sql-written"') : page.index("</pre>", page.index('class="sql-written"'))
    ]
    assert "-- The unique identifier for the entity" in written and "_shoal_version" not in written
    assert "new_image.orderItems AS order_items" in written
    effective = page[page.index('class="sql-effective"') :]
    assert "_shoal_version" in effective and "toJSONString(new_image.^orderItems)" in effective
    wait_for(lambda: Backfill.objects.filter(mv_id=mv.pk, status="done").exists(), message="backfill")


def preview_html(client, pool) -> str:
    start = client.get(reverse("pools:preview", args=[pool.name]) + "?limit=10", HTTP_HX_REQUEST="true")
    poll_url = re.search(r'hx-get="([^"]+)"', start.content.decode()).group(1).replace("&amp;", "&")

    def poll():
        body = client.get(poll_url, HTTP_HX_REQUEST="true").content.decode()
        return body if "spinner" not in body and "<tbody>" in body else None

    return wait_for(poll, message="preview result")


@pytest.mark.parametrize("version", [None, services.ARRIVAL])
def test_internal_columns_are_listed_and_labelled_alike_in_schema_and_preview(maria, loaded_pool, version):
    mv = services.create_mv(
        f"v_{loaded_pool.name}",
        GUIDE_STEP_4.replace("my_dynamo_orders_change_events", loaded_pool.name),
        target_pool=f"t_{loaded_pool.name}",
        mutable=True,
        unique=["order_id"],
        time_column="timestamp",
        version=version,
        backfill=True,
    )
    wait_for(lambda: Backfill.objects.filter(mv_id=mv.pk, status="done").exists(), message="backfill")
    target = mv.target_pool
    # The pool's page refreshes its cards and status from the warehouse once the backfill landed.
    live = reverse("pools:detail", args=[target.name]) + "?part=live"

    def settled():
        part = maria.get(live, HTTP_HX_REQUEST="true").content.decode()
        return (
            part if 'hx-trigger="every 5s, shoal:shown from:document"' in part else None
        )  # back to the idle poll

    part = wait_for(settled, timeout=30, message="statistics")
    assert '>3</div><div class="stat-label">records' in part
    assert 'id="pool-status" class="badge badge-live" hx-swap-oob="true">Live' in part
    preview = preview_html(maria, target)
    page = maria.get(target.get_absolute_url()).content.decode()
    schema = page[page.index("<h2>Schema</h2>") : page.index("<h2>Table settings</h2>")]
    previewed = re.findall(r"<th [^>]*>([^<]+?)(?: <span|<div)", preview)
    listed = re.findall(r"<td><code>([^<]+)</code>", schema)
    assert previewed and sorted(previewed) == sorted(listed)
    internal = {c for c in listed if c.startswith("_shoal")}
    assert internal == ({"_shoal_version"} if version is None else {"_shoal_arrival"})
    console = maria.get(reverse("sql:console")).content.decode()
    for name in internal:
        assert re.search(rf"<code>{name}</code> <span class=\"internal-tag\"", schema)
        assert re.search(rf'class="internal">{name} <span class="internal-tag">', preview)
        assert re.search(rf'data-insert="{name}"[^>]*>{name}</button> <span class="internal-tag">', console)


def test_a_requested_backfill_reads_queued_until_the_worker_plans_it(maria, pool):
    from views_mv.models import MaterializedView

    target = DataPool.objects.create(name=f"t_{pool.name}", kind=DataPool.Kind.MATERIALIZED, access_key="")
    mv = MaterializedView.objects.create(
        name=f"v_{pool.name}", sql="SELECT 1", source_pool=pool, target_pool=target, backfill_requested=True
    )
    page = maria.get(mv.get_absolute_url()).content.decode()
    progress = page[page.index('id="mv-progress"') : page.index("</dl>", page.index('id="mv-progress"'))]
    assert "Queued" in progress and "not requested" not in progress
    assert "hx-trigger" in progress  # and keeps looking until the backfill appears
    MaterializedView.objects.filter(pk=mv.pk).update(backfill_requested=False, status="active")
    page = maria.get(mv.get_absolute_url()).content.decode()
    assert "not requested" in page


def test_the_view_page_s_forms_say_what_is_missing(transactional_db):
    from django.contrib.messages import get_messages
    from django.test import Client

    from console import roles
    from pools.services import create_pool
    from views_mv.models import MaterializedView

    source, target = create_pool("orders_cdc_forms"), create_pool("orders_forms")
    mv = MaterializedView.objects.create(name="orders_forms_mv", source_pool=source, target_pool=target)
    editor = signed_in(Client(), roles.EDITOR)
    check = editor.post(f"/views/{mv.name}/replica-check/", {"connection": "", "table": ""})
    assert check.status_code == 302
    assert "Choose the AWS connection and the DynamoDB table" in " ".join(
        str(m) for m in get_messages(check.wsgi_request)
    )
    edit = editor.post(f"/views/{mv.name}/sql/", {"sql": ""})
    assert "Write the SELECT that defines the view." in " ".join(
        str(m) for m in get_messages(edit.wsgi_request)
    )
