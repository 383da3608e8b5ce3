"""Pools and views as tests set them up: a pool with a fixed name, a delivery landed without HTTP,
a view attached as create_mv leaves it, and the guide's Step 4 SQL."""

from __future__ import annotations

from tests.helpers.firehose import firehose_body

GUIDE_STEP_4 = """SELECT
  -- The unique identifier for the entity
  keys.order_id.S AS order_id, -- DynamoDB Partition key
  parseDateTimeBestEffort(keys.timestamp.S) AS timestamp, -- DynamoDB Sorting key

	-- Save the deleted flag
  if(event_name = 'REMOVE', true, false) AS deleted,

  --All the columns you want to flatten, for example

  toString(new_image.taqueria.S) AS taqueria,
  toInt32OrNull(new_image.quantity.N) AS quantity,
  toFloat64OrNull(new_image.total_price.S) AS total_price,
  new_image.orderItems AS order_items,

	--Always save the new and old image
  new_image,
  old_image
FROM my_dynamo_orders_change_events"""

# The columns GUIDE_STEP_4 makes, in order.
GUIDE_COLUMNS = [
    "order_id",
    "timestamp",
    "deleted",
    "taqueria",
    "quantity",
    "total_price",
    "order_items",
    "new_image",
    "old_image",
]


def fresh_pool(name: str, **kwargs):
    """A pool with a fixed name (for pages and screenshots), its warehouse table dropped first:
    warehouse tables outlive Django's per-test flush."""
    from console import warehouse_client
    from pools.services import create_pool
    from pools.tasks import warehouse_drop_table

    warehouse_client.call(warehouse_drop_table, 0, name)
    return create_pool(name, **kwargs)


def land_direct(pool, records: list, request_id: str | None = None):
    """Land a delivery as the endpoint does, without HTTP (for volume)."""
    from pools.ingest import envelope
    from pools.ingest.landing import land

    request_id, body = firehose_body(records, request_id)
    env = envelope.parse(body, header_request_id=request_id)
    land(pool, env, body, "")
    return request_id


def attach_view(pool, name: str, sql: str, columns: list[list[str]], warehouse):
    """A view attached as create_mv leaves it (without the warehouse worker it would ask)."""
    from pools import loader
    from pools.models import DataPool
    from views_mv.models import MaterializedView

    target = DataPool.objects.create(
        name=f"{name}_{pool.name}",
        kind=DataPool.Kind.MATERIALIZED,
        columns=columns,
        sorting_key=columns[0][0],
        partition_key="",
        timestamp_column="",
        access_key="",
    )
    warehouse.execute(f"DROP TABLE IF EXISTS {target.table}")
    loader.ensure_table(warehouse, target)
    return MaterializedView.objects.create(
        name=f"{name}_{pool.name}", sql=sql, source_pool=pool, target_pool=target, status="active"
    )


def run_in_console(client, sql: str) -> str:
    """Run SQL as the console's editor does (htmx POST), following the polls until the result."""
    from django.urls import reverse

    from console.models import QueryRun

    htmx = {"HTTP_HX_REQUEST": "true"}
    reply = client.post(reverse("sql:run"), {"sql": sql}, **htmx)
    assert reply.status_code == 200
    html = reply.content.decode()
    for _ in range(60):
        if "hx-get" not in html:
            return html
        run = QueryRun.objects.latest("id")
        html = client.get(reverse("sql:result", args=[run.pk]), **htmx).content.decode()
    raise AssertionError("the query did not finish")
