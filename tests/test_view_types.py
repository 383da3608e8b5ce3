"""Types never lie (issue 20): a view's target columns take the types its SELECT declares, whether
or not the source has rows, so that a value the SELECT answers as NULL is stored as NULL, never
as 0; through `create_mv` (command and services) and through the wizard."""

from __future__ import annotations

import html
import json
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from console import warehouse_client
from console.tasks import run_sql
from pools.models import DataPool
from tests.helpers.firehose import change_record
from tests.helpers.pools import GUIDE_STEP_4, land_direct
from tests.helpers.roles import signed_in
from tests.helpers.waiting import wait_for
from views_mv.models import Backfill

pytestmark = pytest.mark.django_db(transaction=True)

# What docs/materialized-views.md says the guide's SQL makes.
GUIDE_TYPES = {
    "order_id": "String",
    "timestamp": "DateTime",
    "deleted": "Bool",
    "taqueria": "String",
    "quantity": "Nullable(Int32)",
    "total_price": "Nullable(Float64)",
    "order_items": "Nullable(String)",
    "new_image": "JSON",
}


def sql(query: str) -> list[list]:
    result = warehouse_client.call(run_sql, query)
    assert "error" not in result, result
    return result["rows"]


def order_without_numbers(order_id: str) -> dict:
    """An order as the issue put it: no quantity and no total_price."""
    record = change_record(order_id)
    del record["dynamodb"]["NewImage"]["quantity"], record["dynamodb"]["NewImage"]["total_price"]
    return record


def loaded(pool, count: int) -> None:
    wait_for(lambda: DataPool.objects.get(pk=pool.pk).record_count >= count, timeout=60, message="loads")


def create_with_command(pool, tmp_path, *extra: str) -> dict:
    sql_file = tmp_path / "step4.sql"
    sql_file.write_text(GUIDE_STEP_4.replace("my_dynamo_orders_change_events", pool.name))
    out = StringIO()
    call_command(
        "create_mv",
        f"flattened_{pool.name}",
        "--sql-file",
        str(sql_file),
        "--target-pool",
        f"dynamodb_{pool.name}",
        "--mutable",
        "--unique",
        "order_id",
        "--time",
        "timestamp",
        "--backfill",
        "--wait",
        "--json",
        *extra,
        stdout=out,
    )
    return json.loads(out.getvalue())


def missing_numbers_stay_null(pool, target: str, before: int) -> None:
    land_direct(pool, [order_without_numbers("o-missing")])
    loaded(pool, before + 1)
    query = f"SELECT quantity, total_price FROM {target} WHERE order_id = 'o-missing'"
    wait_for(lambda: sql(query), message="the view applied")
    assert sql(query) == [[None, None]]
    # The same SELECT over the raw pool answers NULL, NULL.
    own = GUIDE_STEP_4.replace("my_dynamo_orders_change_events", pool.name)
    assert sql(f"SELECT quantity, total_price FROM ({own}) WHERE order_id = 'o-missing'") == [[None, None]]


def test_over_a_pool_with_rows_a_missing_quantity_stays_null(pool, warehouse_worker, tmp_path):
    # Every sampled order has a quantity and a total price: not a reason to drop Nullable.
    land_direct(pool, [change_record(f"o{i}", quantity=i + 1) for i in range(3)])
    loaded(pool, 3)
    data = create_with_command(pool, tmp_path)
    assert {n: t for n, t in data["columns"] if n in GUIDE_TYPES} == GUIDE_TYPES
    missing_numbers_stay_null(pool, data["target_pool"], 3)


def test_over_an_empty_pool_the_types_are_the_same(pool, warehouse_worker, tmp_path):
    data = create_with_command(pool, tmp_path)
    assert {n: t for n, t in data["columns"] if n in GUIDE_TYPES} == GUIDE_TYPES
    land_direct(pool, [change_record("o1", quantity=3)])
    loaded(pool, 1)
    wait_for(lambda: sql(f"SELECT quantity FROM {data['target_pool']}") == [[3]], message="view applied")
    missing_numbers_stay_null(pool, data["target_pool"], 1)


def step(name: str) -> str:
    return reverse("views_mv:create_step", args=[name])


def test_through_the_wizard_a_missing_quantity_stays_null(client, pool, warehouse_worker):
    maria = signed_in(client, "editor", username="maria")
    land_direct(pool, [change_record(f"o{i}", quantity=i + 1) for i in range(3)])
    loaded(pool, 3)
    sql_text = GUIDE_STEP_4.replace("my_dynamo_orders_change_events", pool.name)
    assert maria.post(step("sql"), {"sql": sql_text, "action": "next"}).status_code == 302
    target = f"dynamodb_{pool.name}"
    assert maria.post(step("destination"), {"kind": "new", "new_name": target}).status_code == 302
    page = maria.get(step("table")).content.decode()
    fields = re.findall(r'name="type__([^"]+)" value="([^"]*)"', page)
    offered = {name: html.unescape(value) for name, value in fields}
    assert offered["quantity"] == "Nullable(Int32)" and offered["total_price"] == "Nullable(Float64)"
    answers = {"mode": "mutable", "unique": ["order_id"], "time_column": "timestamp"}
    reply = maria.post(step("table"), {**{f"type__{k}": v for k, v in offered.items()}, **answers})
    assert reply.status_code == 302, reply.content.decode()[-3000:]
    name = f"v_{pool.name}"
    assert maria.post(step("confirm"), {"name": name, "backfill": "on"}).status_code == 302
    wait_for(lambda: Backfill.objects.filter(mv__name=name, status="done").exists(), message="backfill")
    assert dict(DataPool.objects.get(name=target).columns)["quantity"] == "Nullable(Int32)"
    missing_numbers_stay_null(pool, target, 3)


def test_the_wizard_names_the_values_a_narrower_type_changes_and_asks_first(client, pool, warehouse_worker):
    maria = signed_in(client, "editor", username="maria")
    land_direct(pool, [change_record("o1", quantity=3), order_without_numbers("o2")])
    loaded(pool, 2)
    sql_text = GUIDE_STEP_4.replace("my_dynamo_orders_change_events", pool.name)
    maria.post(step("sql"), {"sql": sql_text, "action": "next"})
    maria.post(step("destination"), {"kind": "new", "new_name": f"dynamodb_{pool.name}"})
    page = maria.get(step("table")).content.decode()
    offered = {n: html.unescape(v) for n, v in re.findall(r'name="type__([^"]+)" value="([^"]*)"', page)}
    answers = {"mode": "mutable", "unique": ["order_id"], "time_column": "timestamp"}
    narrower = {**{f"type__{k}": v for k, v in offered.items()}, "type__quantity": "Int32", **answers}
    reply = maria.post(step("table"), narrower)
    text = html.unescape(reply.content.decode())
    assert reply.status_code == 200
    assert "quantity as Int32 instead of the query's Nullable(Int32): 1 of the 2 rows sampled" in text
    assert "NULL → 0" in text and "Store these values changed" in text
    # Confirmed, the user's type is kept.
    assert maria.post(step("table"), {**narrower, "accept_type_changes": "on"}).status_code == 302
    assert maria.session["mv_wizard"]["table"]["types"]["quantity"] == "Int32"


def test_create_mv_refuses_a_type_that_changes_values_unless_accepted(pool, warehouse_worker, tmp_path):
    from django.core.management.base import CommandError

    land_direct(pool, [change_record("o1", quantity=3), order_without_numbers("o2")])
    loaded(pool, 2)
    with pytest.raises(CommandError, match=r"total_price as Float32 .*NULL → 0"):
        create_with_command(pool, tmp_path, "--type", "total_price=Float32")
    assert not DataPool.objects.filter(name=f"dynamodb_{pool.name}").exists()
    # A wider type changes nothing and needs no confirmation.
    data = create_with_command(pool, tmp_path, "--type", "quantity=Nullable(Int64)")
    assert dict(data["columns"])["quantity"] == "Nullable(Int64)"


def test_a_view_narrower_than_its_query_is_listed_and_rebuilt_with_the_querys_types(
    client, pool, warehouse_worker, tmp_path
):
    from views_mv import services
    from views_mv.models import MaterializedView

    # As an older Shoal made it: quantity Int32, so an order without one holds 0.
    land_direct(pool, [change_record("o1", quantity=3), order_without_numbers("o2")])
    loaded(pool, 2)
    own = GUIDE_STEP_4.replace("my_dynamo_orders_change_events", pool.name)
    mv = services.create_mv(
        f"v_{pool.name}",
        own,
        target_pool=f"t_{pool.name}",
        mutable=True,
        unique=["order_id"],
        time_column="timestamp",
        column_types={"quantity": "Int32"},
        accept_type_changes=True,
        backfill=True,
    )
    target = mv.target_pool.name
    wait_for(lambda: Backfill.objects.filter(mv_id=mv.pk, status="done").exists(), message="backfill")
    assert sql(f"SELECT quantity FROM {target} WHERE order_id = 'o2'") == [[0]]

    wait_for(lambda: MaterializedView.objects.get(pk=mv.pk).types_checked_at, message="the type check")
    narrowed = [{"column": "quantity", "stored": "Int32", "declared": "Nullable(Int32)"}]
    assert MaterializedView.objects.get(pk=mv.pk).narrowed_types == narrowed
    admin = signed_in(client, "admin", username="ada")
    page = admin.get(mv.get_absolute_url()).content.decode()
    assert "Columns narrower than the query" in page and "manage.py rebuild_mv" in page
    listing = admin.get(
        reverse("admin:views_mv_materializedview_changelist") + "?narrowed=yes"
    ).content.decode()
    assert mv.name in listing and "quantity Int32 (query: Nullable(Int32))" in listing

    # The rebuild: the query's types, the source copied again, live deliveries still arriving.
    assert admin.post(reverse("views_mv:rebuild", args=[mv.name])).status_code == 302
    land_direct(pool, [order_without_numbers("o3")])
    wait_for(lambda: MaterializedView.objects.get(pk=mv.pk).narrowed_types == [], message="rebuilt")
    wait_for(lambda: Backfill.objects.filter(mv_id=mv.pk, status="done").exists(), message="backfill")
    loaded(pool, 3)
    assert dict(DataPool.objects.get(name=target).columns)["quantity"] == "Nullable(Int32)"
    rows = f"SELECT order_id, quantity FROM {target} ORDER BY order_id"
    wait_for(lambda: sql(rows) == [["o1", 3], ["o2", None], ["o3", None]], message=f"rows {sql(rows)}")
    assert "Columns narrower than the query" not in admin.get(mv.get_absolute_url()).content.decode()
