"""Materialized Views: the guide's Step 4 SQL verbatim through `create_mv`, type inference,
current state of mutable pools, and a backfill racing live deliveries giving every event once."""

from __future__ import annotations

import json
import threading
import time
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from console import warehouse_client
from console.tasks import run_sql
from pools.models import DataPool
from pools.tasks import warehouse_pool_stats
from tests.helpers.firehose import change_record
from tests.helpers.pools import GUIDE_STEP_4, land_direct
from tests.helpers.waiting import wait_for
from views_mv import services
from views_mv.models import Backfill, MaterializedView

pytestmark = pytest.mark.django_db(transaction=True)


def sql(query: str) -> list[list]:
    result = warehouse_client.call(run_sql, query)
    assert "error" not in result, result
    return result["rows"]


def loaded(pool, count: int) -> None:
    wait_for(lambda: DataPool.objects.get(pk=pool.pk).record_count >= count, timeout=60, message="loads")


def test_the_guides_sql_through_create_mv_gives_the_current_state(pool, warehouse_worker, tmp_path):
    land_direct(pool, [change_record("o1", "INSERT", quantity=3), change_record("o2", "INSERT", quantity=1)])
    land_direct(pool, [change_record("o1", "MODIFY", quantity=4), change_record("o2", "REMOVE", quantity=1)])
    loaded(pool, 4)
    sql_file = tmp_path / "view.sql"
    sql_file.write_text(GUIDE_STEP_4.replace("my_dynamo_orders_change_events", pool.name))
    target = f"dynamodb_{pool.name}"
    out = StringIO()
    call_command(
        "create_mv",
        f"flattened_{pool.name}",
        "--sql-file",
        str(sql_file),
        "--target-pool",
        target,
        "--mutable",
        "--unique",
        "order_id",
        "--time",
        "timestamp",
        "--backfill",
        "--wait",
        "--json",
        stdout=out,
    )
    data = json.loads(out.getvalue())
    assert data["name"] == f"flattened_{pool.name}" and data["target_pool"] == target
    # The default for a DynamoDB source: the change time is the version (issue "faithful replica").
    assert data["engine"] == "ReplacingMergeTree(_shoal_version, deleted)"
    assert data["sorting_key"] == "order_id" and data["timestamp_column"] == "timestamp"
    types = dict(data["columns"])
    assert types["order_id"] == "String" and types["timestamp"] == "DateTime"
    assert types["deleted"] == "Bool" and types["quantity"] == "Nullable(Int32)"
    assert types["total_price"] == "Nullable(Float64)" and types["new_image"] == "JSON"
    # `new_image.orderItems` names a list attribute: the column holds it as DynamoDB sent it.
    assert types["order_items"] == "Nullable(String)"
    assert "latest change wins" in MaterializedView.objects.get(name=data["name"]).versioning

    # Users see the current state without FINAL: o1 as modified, o2 (removed) gone.
    assert sql(f"SELECT order_id, quantity, taqueria FROM {target} ORDER BY order_id") == [
        ["o1", 4, "La Paloma"]
    ]
    sent = change_record("x")["dynamodb"]["NewImage"]["orderItems"]
    [[backfilled]] = sql(f"SELECT order_items FROM {target}")
    assert json.loads(backfilled) == sent
    # The view-fed pool's statistics come from the warehouse like any pool's.
    warehouse_client.call(warehouse_pool_stats)
    entity = DataPool.objects.get(name=target)
    assert entity.record_count == 1 and entity.status == DataPool.Status.LIVE
    assert entity.last_delivery_at == DataPool.objects.get(pk=pool.pk).last_delivery_at
    assert entity.disk_bytes > 0
    mv = MaterializedView.objects.get(name=data["name"])
    assert mv.user_sql == sql_file.read_text().strip() and "toJSONString(new_image.^orderItems)" in mv.sql

    # Later deliveries flow through the view with no extra step.
    land_direct(pool, [change_record("o3", "INSERT", quantity=9), change_record("o1", "REMOVE")])
    loaded(pool, 6)
    wait_for(lambda: sql(f"SELECT order_id FROM {target}") == [["o3"]], message="view applied")
    [[live]] = sql(f"SELECT order_items FROM {target}")  # through the view itself
    assert json.loads(live) == sent


def test_a_backfill_racing_live_deliveries_copies_every_event_once(pool, warehouse_worker):
    # MV_BACKFILL_CHUNK_ROWS is 300 in tests: many chunks, so deliveries land mid-backfill.
    for b in range(20):
        land_direct(pool, [change_record(f"o{b}-{i}") for i in range(100)])
    loaded(pool, 2000)
    query = f"SELECT event_id, event_name, keys.order_id.S AS order_id FROM {pool.name}"

    stop = threading.Event()

    def keep_delivering():
        n = 0
        while not stop.is_set() and n < 30:
            land_direct(pool, [change_record(f"live{n}-{i}") for i in range(50)])
            n += 1
            time.sleep(0.05)

    sender = threading.Thread(target=keep_delivering)
    sender.start()
    mv = services.create_mv(
        f"events_{pool.name}", query, target_pool=f"events_copy_{pool.name}", backfill=True
    )
    try:
        wait_for(
            lambda: Backfill.objects.filter(mv=mv, status="done").exists(), timeout=120, message="backfill"
        )
    finally:
        stop.set()
        sender.join()
    total = DataPool.objects.get(pk=pool.pk)
    wait_for(
        lambda: DataPool.objects.get(pk=pool.pk).deliveries.exclude(status="loaded").count() == 0,
        timeout=60,
        message="all deliveries loaded",
    )
    expected = sql(f"SELECT count() FROM {pool.name}")[0][0]
    assert expected > 2000 and total is not None
    wait_for(
        lambda: (
            sql(f"SELECT count(), uniqExact(event_id) FROM events_copy_{pool.name}") == [[expected, expected]]
        ),
        timeout=30,
        message="every event exactly once",
    )
    backfill = Backfill.objects.get(mv=mv)
    assert backfill.rows_done == backfill.rows_total >= 2000 and len(backfill.chunks) > 3


def test_inspecting_sql_refuses_what_cannot_be_a_view(pool, warehouse_worker):
    with pytest.raises(ValidationError, match="exactly one Data Pool"):
        services.inspect("SELECT 1")
    with pytest.raises(ValidationError, match="Syntax error|SYNTAX_ERROR"):
        services.inspect(f"SELEC event_id FROM {pool.name}")
    plan = services.inspect(f"SELECT event_id, keys.order_id.S AS order_id FROM {pool.name}")
    assert plan.source == pool and [c["name"] for c in plan.columns] == ["event_id", "order_id"]


def test_create_mv_explains_a_bad_table_setting(pool, warehouse_worker, tmp_path):
    sql_file = tmp_path / "v.sql"
    sql_file.write_text(f"SELECT event_id, new_image FROM {pool.name}")
    with pytest.raises(CommandError, match="JSON"):
        call_command(
            "create_mv",
            "v1",
            "--sql-file",
            str(sql_file),
            "--target-pool",
            "t_v1",
            "--mutable",
            "--unique",
            "new_image",
        )
    with pytest.raises(CommandError, match="uniquely identify"):
        call_command("create_mv", "v1", "--sql-file", str(sql_file), "--target-pool", "t_v1", "--mutable")
    assert not MaterializedView.objects.exists() and not DataPool.objects.filter(name="t_v1").exists()


def test_a_firehose_delivery_to_a_view_pool_is_refused(live_server, pool, warehouse_worker):
    from tests.helpers.firehose import endpoint, firehose_body, firehose_headers
    from tests.helpers.servers import http

    mv = services.create_mv(
        f"v_{pool.name}", f"SELECT event_id FROM {pool.name}", target_pool=f"t_{pool.name}"
    )
    request_id, body = firehose_body([change_record("o1")])
    reply = http("POST", endpoint(live_server, mv.target_pool), body, firehose_headers(request_id, ""))
    assert reply.status == 404


def test_a_pool_used_by_a_view_cannot_be_deleted_until_the_view_is(pool, warehouse_worker):
    from pools.services import delete_pool

    mv = services.create_mv(
        f"v_{pool.name}", f"SELECT event_id FROM {pool.name}", target_pool=f"t_{pool.name}"
    )
    for used in (pool, mv.target_pool):
        with pytest.raises(ValidationError, match=f"Materialized View v_{pool.name}"):
            delete_pool(used, used.name)
    services.delete_mv(mv)
    wait_for(lambda: not MaterializedView.objects.filter(pk=mv.pk).exists(), message="view removed")
    target = DataPool.objects.get(name=f"t_{pool.name}")  # kept, as asked
    delete_pool(target, target.name)
    wait_for(lambda: not DataPool.objects.filter(pk=target.pk).exists(), message="target deleted")
    assert sql(f"EXISTS TABLE _mv_v_{pool.name}") == [[0]]


def test_a_query_shoal_cannot_version_keeps_arrival_order_and_says_so(pool, warehouse_worker):
    query = (
        f"WITH 1 AS one SELECT keys.order_id.S AS order_id, event_name = 'REMOVE' AS deleted FROM {pool.name}"
    )
    mv = services.create_mv(
        f"w_{pool.name}", query, target_pool=f"tw_{pool.name}", mutable=True, unique=["order_id"]
    )
    assert mv.target_pool.engine == "ReplacingMergeTree(_shoal_arrival, deleted)"
    assert "arrival order" in mv.versioning and "WITH" in mv.versioning


def test_a_view_whose_sql_ends_in_a_comment_is_backfilled_exactly_once(pool, warehouse_worker):
    # Settings appended after the view's SQL must not end up inside its trailing line comment.
    for b in range(4):
        land_direct(pool, [change_record(f"c{b}-{i}") for i in range(100)])
    loaded(pool, 400)
    query = f"SELECT event_id FROM {pool.name} -- every change event"
    mv = services.create_mv(f"c_{pool.name}", query, target_pool=f"tc_{pool.name}", backfill=True)
    wait_for(lambda: Backfill.objects.filter(mv=mv, status="done").exists(), timeout=60, message="backfill")
    assert len(Backfill.objects.get(mv=mv).chunks) > 1
    assert sql(f"SELECT count(), uniqExact(event_id) FROM tc_{pool.name}") == [[400, 400]]


def test_a_key_column_that_is_null_is_refused_with_the_reason(pool, warehouse_worker):
    land_direct(pool, [change_record(f"o{i}") for i in range(12)])
    loaded(pool, 12)
    query = (
        f"SELECT keys.order_id.S AS order_id, new_image.discount.N AS discount, "
        f"toInt32OrNull(toString(new_image.quantity.N)) AS quantity FROM {pool.name}"
    )
    plan = services.inspect(query)
    for answers in (
        {"unique": ["discount"]},
        {"unique": ["order_id"], "time_column": None, "filters": ["discount"]},
    ):
        with pytest.raises(ValidationError) as refused:
            services.create_mv(
                f"n_{pool.name}", query, target_pool=f"n_{pool.name}", mutable=True, plan=plan, **answers
            )
        assert "discount is NULL in 12 of the 12 rows sampled" in str(refused.value)
        assert "would become one record" in str(refused.value)
    # Nullable, though never NULL here: only with the user's consent to store the default.
    with pytest.raises(ValidationError) as refused:
        services.create_mv(
            f"n_{pool.name}", query, target_pool=f"n_{pool.name}", plan=plan, filters=["quantity"]
        )
    assert "quantity is Nullable(Int32)" in str(refused.value)
    assert not DataPool.objects.filter(name=f"n_{pool.name}").exists()
    mv = services.create_mv(
        f"n_{pool.name}",
        query,
        target_pool=f"n_{pool.name}",
        plan=plan,
        filters=["quantity"],
        nullable_keys=True,
    )
    assert mv.target_pool.sorting_key == "quantity"
