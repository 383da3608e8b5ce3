"""What a 200 promises, tried with the records real DynamoDB tables produce: attribute names with
dots, records the warehouse refuses, envelopes Python and ClickHouse could read differently,
faults that pass. Every record ends once in the pool or in quarantine with its reason."""

from __future__ import annotations

import pytest

from pools import loader
from pools.models import Delivery
from tests.conftest import change_record, land_direct

pytestmark = pytest.mark.django_db(transaction=True)


def dotted_record(order_id: str) -> dict:
    """A legal DynamoDB item whose attribute names collide once dots are read as nesting."""
    record = change_record(order_id)
    image = record["dynamodb"]["NewImage"]
    image["x.M.S"] = {"S": "flat"}
    image["x"] = {"M": {"S": {"S": "nested"}}}
    image["user.name"] = {"S": "dotted"}
    image["user"] = {"M": {"name": {"S": "nested"}}}
    return record


def rows_of(warehouse, pool, columns: str = "count()", tail: str = "") -> list:
    return warehouse.query(f"SELECT {columns} FROM {pool.table} {tail}", readonly=True).rows


def test_it_keeps_attribute_names_with_dots_apart_and_exact(pool, local_warehouse, no_worker):
    records = [dotted_record("o1"), change_record("o2")]
    land_direct(pool, records)
    outcome = loader.load_pool(local_warehouse, pool.pk)
    assert (outcome.records, outcome.quarantined, outcome.failed) == (2, 0, 0)

    rows = rows_of(
        local_warehouse,
        pool,
        "keys.order_id.S, new_image, new_image.`user%2Ename`.S, new_image.user.M.name.S, "
        "new_image.`x%2EM%2ES`.S, new_image.x.M.S.S",
        "ORDER BY 1",
    )
    assert rows[0][0] == "o1"
    # The image comes back as DynamoDB sent it: same attribute names, same values.
    assert rows[0][1] == records[0]["dynamodb"]["NewImage"]
    assert rows[0][2:] == ["dotted", "nested", "flat", "nested"]
    assert rows[1][1] == records[1]["dynamodb"]["NewImage"]
    delivery = Delivery.objects.get(pool=pool)
    assert (delivery.status, delivery.loaded_count) == (Delivery.Status.LOADED, 2)
