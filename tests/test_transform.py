""" "Transform into an entity pool" (issue 20, fewer clicks): the guide's Step 4 written for a
DynamoDB pool's keys and attributes, tested, with the guide's answers; one Create."""

from __future__ import annotations

import pytest
from django.urls import reverse

from pools.models import DataPool
from tests.helpers.firehose import change_record
from tests.helpers.pools import land_direct
from tests.helpers.roles import signed_in
from tests.helpers.waiting import wait_for
from views_mv.models import Backfill, MaterializedView
from views_mv.transform import Seen, answers, column_name, step4_sql

GUIDE_LIKE = Seen(
    keys=[("order_id", "S"), ("timestamp", "S")],
    time_keys={"timestamp"},
    attributes=[
        ("orderItems", "L", False),
        ("quantity", "N", True),
        ("taqueria", "S", False),
        ("total", "N", False),
    ],
)


def test_the_sql_is_the_guides_step_4_for_the_tables_keys_and_attributes():
    sql = step4_sql("orders_cdc", GUIDE_LIKE)
    for line in (
        "keys.order_id.S AS order_id,",
        "parseDateTimeBestEffort(keys.timestamp.S) AS timestamp,",
        "if(event_name = 'REMOVE', true, false) AS deleted,",
        "new_image.orderItems AS order_items,",
        "toInt64OrNull(new_image.quantity.N) AS quantity,",
        "new_image.taqueria.S AS taqueria,",
        "toFloat64OrNull(new_image.total.N) AS total,",
        "new_image,",
    ):
        assert f"\n  {line}\n" in sql
    assert sql.endswith("old_image\nFROM orders_cdc")
    assert answers(GUIDE_LIKE) | {} == {
        "mode": "mutable",
        "unique": ["order_id"],
        "time_column": "timestamp",
        "filters": [],
        "version": "",
        "nullable_keys": False,
        "accept_type_changes": False,
    }


def test_odd_attribute_names_are_quoted_and_never_clash():
    seen = Seen(keys=[("pk", "S")], attributes=[("user.name", "S", False), ("deleted", "BOOL", False)])
    sql = step4_sql("t", seen)
    assert "new_image.`user%2Ename`.S AS user_name," in sql
    assert "new_image.deleted.BOOL AS deleted_," in sql  # the flag keeps its name
    assert column_name("orderItems") == "order_items" and column_name("9lives") == "a_9lives"


@pytest.fixture
def no_orders_tables(warehouse_worker):
    """Warehouse tables outlive the test database: none named as the guide's before and after."""
    from console import warehouse_client
    from pools.tasks import warehouse_drop_table

    warehouse_client.call(warehouse_drop_table, 0, "dynamodb_orders")
    yield
    warehouse_client.call(warehouse_drop_table, 0, "dynamodb_orders")


@pytest.mark.django_db(transaction=True)
def test_one_click_offers_the_tested_view_and_one_more_creates_it(client, pool, no_orders_tables):
    editor = signed_in(client, "editor", username="maria")
    land_direct(
        pool, [change_record(f"o{i}", quantity=i + 1) for i in range(3)] + [change_record("o9", "REMOVE")]
    )
    wait_for(lambda: DataPool.objects.get(pk=pool.pk).record_count == 4, message="load")
    page = editor.get(pool.get_absolute_url()).content.decode()
    assert reverse("views_mv:transform", args=[pool.name]) in page and "Transform into an entity pool" in page

    reply = editor.get(reverse("views_mv:transform", args=[pool.name]))
    assert reply.status_code == 302 and reply["Location"] == reverse("views_mv:create_step", args=["confirm"])
    confirm = editor.get(reply["Location"]).content.decode()
    assert (
        "keys.order_id.S AS order_id" in confirm
        and "toInt64OrNull(new_image.quantity.N) AS quantity" in confirm
    )
    assert "La Paloma" in confirm  # the Test's rows
    assert 'value="flattened_dynamodb_orders_materialized_view"' in confirm  # the guide's names
    assert "REPLACING_MERGE_TREE" in confirm and "dynamodb_orders" in confirm

    created = editor.post(
        reply["Location"], {"name": "flattened_dynamodb_orders_materialized_view", "backfill": "on"}
    )
    assert created.status_code == 302
    mv = MaterializedView.objects.get(name="flattened_dynamodb_orders_materialized_view")
    assert mv.target_pool.name == "dynamodb_orders" and mv.target_pool.sorting_key == "order_id"
    assert dict(mv.target_pool.columns)["quantity"] == "Nullable(Int64)"
    wait_for(lambda: Backfill.objects.filter(mv=mv, status="done").exists(), message="backfill")


@pytest.mark.django_db(transaction=True)
def test_a_pool_without_changes_says_why_it_cannot_be_transformed_yet(client, pool, warehouse_worker):
    editor = signed_in(client, "editor", username="maria")
    reply = editor.get(reverse("views_mv:transform", args=[pool.name]), follow=True)
    assert "has received no change yet" in reply.content.decode()
