"""Property (issue 20, "types never lie"): for random items — attributes missing, NULL, of another
DynamoDB type, empty strings, huge numbers — put, modified and removed, every column of the
guide's entity pool equals the view's SELECT run over the raw pool for the latest change of each
item, value and type, whether the view was created over an empty pool or over one with rows."""

from __future__ import annotations

import itertools
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console import warehouse_client
from console.tasks import run_sql
from pools.ingest import records
from pools.models import DataPool
from tests.helpers.firehose import change_record
from tests.helpers.pools import GUIDE_COLUMNS, GUIDE_STEP_4, land_direct
from tests.helpers.waiting import wait_for
from views_mv import services
from views_mv.models import Backfill

pytestmark = pytest.mark.django_db(transaction=True)

_clock = itertools.count(1_800_000_000_000)

NUMBERS = ["0", "3", "-12", "2.5", "2147483648", "12345678901234567890123456789012345678", "1E+38", "1e400"]
TEXTS = ["", "La Paloma", "12.50", "abc", "ünïcødé ✓", "NULL", "3"]
VALUE = st.one_of(
    st.sampled_from(NUMBERS).map(lambda n: {"N": n}),
    st.sampled_from(TEXTS).map(lambda s: {"S": s}),
    st.just({"NULL": True}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"SS": ["a", "b"]}),
    st.just({"L": [{"S": "x"}, {"N": "1"}]}),
    st.just({"M": {"qty": {"N": "2"}}}),
)
MISSING = object()
ATTRIBUTES = ("quantity", "total_price", "taqueria", "orderItems")
IMAGE = st.fixed_dictionaries({name: st.one_of(st.just(MISSING), VALUE) for name in ATTRIBUTES})
# An item's life: its first change is a put, then modifications and perhaps a removal.
LIFE = st.lists(IMAGE, min_size=1, max_size=3).flatmap(
    lambda images: st.tuples(st.just(images), st.booleans())
)


def image(keys: dict, attributes: dict) -> dict:
    return {**keys, **{k: v for k, v in attributes.items() if v is not MISSING}}


def changes(order_id: str, life) -> list[dict]:
    images, removed = life
    keys = {"order_id": {"S": order_id}, "timestamp": {"S": "2024-05-08T13:20:37Z"}}
    out, old = [], None
    for i, attributes in enumerate(images):
        new = image(keys, attributes)
        out.append(change(order_id, "INSERT" if i == 0 else "MODIFY", keys, new, old))
        old = new
    if removed:
        out.append(change(order_id, "REMOVE", keys, None, old))
    return out


def change(order_id, event, keys, new, old) -> dict:
    return records.change_record(
        event,
        keys=keys,
        new_image=new,
        old_image=old,
        event_id=str(uuid.uuid4()),
        created=next(_clock),  # each change later than the one before
        table_name="orders",
        region="us-east-1",
    )


def sql(query: str) -> list[list]:
    result = warehouse_client.call(run_sql, query)
    assert "error" not in result, (result, query)
    return result["rows"]


def typed_values(types: dict[str, str]) -> str:
    """Each column as 'type:value' ('NULL' for NULL): the value's own type for a Dynamic."""
    out = []
    for name in GUIDE_COLUMNS:
        type_, column = types[name], f"`{name}`"
        if type_ == "Dynamic":
            shown = f"concat(dynamicType({column}), ':', toString({column}))"
        else:
            inner = type_[len("Nullable(") : -1] if type_.startswith("Nullable(") else type_
            shown = f"concat('{inner}:', toString({column}))"
        out.append(f"if(isNull({column}), 'NULL', {shown})")
    return ", ".join(out)


def describe(query: str) -> dict[str, str]:
    return {row[0]: row[1] for row in sql(f"DESCRIBE ({query})")}


@pytest.mark.parametrize("prefilled", [False, True])
def test_the_entity_pool_equals_the_views_select_for_the_latest_change_of_each_item(
    prefilled, pool, warehouse_worker
):
    if prefilled:  # sampled rows where nothing is missing must not narrow any type
        land_direct(pool, [change_record(f"first{i}", quantity=i + 1) for i in range(3)])
        wait_for(lambda: DataPool.objects.get(pk=pool.pk).record_count == 3, message="load")
    own = GUIDE_STEP_4.replace("my_dynamo_orders_change_events", pool.name)
    mv = services.create_mv(
        f"v_{pool.name}",
        own,
        target_pool=f"t_{pool.name}",
        mutable=True,
        unique=["order_id"],
        time_column="timestamp",
        backfill=True,
    )
    wait_for(lambda: Backfill.objects.filter(mv_id=mv.pk, status="done").exists(), message="backfill")
    target = mv.target_pool.name
    with_time = own.replace("\nFROM ", ",\n  approximate_creation_date_time AS _t\nFROM ")
    select_types, target_types = describe(own), describe(f"SELECT * FROM {target}")
    stored = [0 if not prefilled else 3]

    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(lives=st.lists(LIFE, min_size=1, max_size=6))
    def check(lives):
        ids = [f"o{uuid.uuid4().hex[:10]}" for _ in lives]
        batch = [
            record for order_id, life in zip(ids, lives, strict=True) for record in changes(order_id, life)
        ]
        land_direct(pool, batch)
        stored[0] += len(batch)
        wait_for(lambda: DataPool.objects.get(pk=pool.pk).record_count >= stored[0], message="load")
        wanted = ", ".join(f"'{i}'" for i in ids)
        # The SELECT over the raw pool, the latest change of each item; a removed item is gone.
        raw = sql(
            f"SELECT toString(order_id), deleted, {typed_values(select_types)} FROM ({with_time}) "
            f"WHERE toString(order_id) IN ({wanted}) ORDER BY _t"
        )
        latest = {row[0]: row for row in raw}
        expected = sorted(row[2:] for row in latest.values() if not row[1])

        def entity():
            rows = sql(f"SELECT {typed_values(target_types)} FROM {target} WHERE order_id IN ({wanted})")
            return sorted(rows)

        wait_for(lambda: entity() == expected, timeout=30, message=f"entity rows {entity()} == {expected}")

    check()
    # And the target's declared types are what the docs give for the guide's SQL.
    assert (
        target_types["quantity"] == "Nullable(Int32)" and target_types["total_price"] == "Nullable(Float64)"
    )
