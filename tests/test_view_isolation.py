"""A view that cannot transform a record never blocks its pool or the other views: the record is
listed against the view with ClickHouse's error, every other record reaches every target once,
and after the view is fixed a retry brings exactly the missing rows."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from console import warehouse_client
from console.tasks import run_sql
from pools.models import DataPool, Delivery
from tests.helpers.firehose import change_record
from tests.helpers.pools import land_direct
from tests.helpers.waiting import wait_for
from views_mv import services
from views_mv.models import MaterializedView, ViewFailure
from views_mv.tasks import warehouse_retry_view_failures

pytestmark = pytest.mark.django_db(transaction=True)


def sql(query: str) -> list[list]:
    result = warehouse_client.call(run_sql, query)
    assert "error" not in result, result
    return result["rows"]


def all_loaded(pool, deliveries: int) -> None:
    wait_for(
        lambda: Delivery.objects.filter(pool=pool, status="loaded").count() == deliveries,
        timeout=60,
        message="deliveries loaded",
    )


def bad_quantity(order_id: str) -> dict:
    record = change_record(order_id)
    record["dynamodb"]["NewImage"]["quantity"] = {"N": "abc"}
    return record


@pytest.fixture
def staff(client):
    from console import roles
    from tests.helpers.roles import signed_in

    return signed_in(client, roles.ADMIN)  # the admin's list of failures needs the admin role


def test_a_failing_view_loses_nothing_and_converges_after_a_fix(pool, warehouse_worker, staff):
    land_direct(pool, [change_record(f"early{i}") for i in range(5)])
    all_loaded(pool, 1)
    strict = services.create_mv(
        f"strict_{pool.name}",
        f"SELECT keys.order_id.S AS order_id, toInt32(new_image.quantity.N) AS qty FROM {pool.name}",
        target_pool=f"qty_{pool.name}",
        backfill=True,
    )
    ids = services.create_mv(
        f"ids_{pool.name}",
        f"SELECT keys.order_id.S AS order_id FROM {pool.name}",
        target_pool=f"ids_{pool.name}",
    )
    wait_for(lambda: MaterializedView.objects.filter(status="active").count() == 2, message="views attached")

    batches = [
        [change_record("a1"), bad_quantity("bad1"), change_record("a2"), change_record("a3")],
        [change_record("b1")],
        [bad_quantity("bad2"), change_record("c1")],
    ]
    for records in batches:
        land_direct(pool, records)
    all_loaded(pool, 4)
    assert not Delivery.objects.filter(pool=pool).exclude(error="").exists()  # no delivery blamed
    assert sql(f"SELECT count() FROM {pool.name}") == [[5 + 7]]
    later = ["a1", "a2", "a3", "b1", "c1"]
    assert sql(f"SELECT order_id FROM ids_{pool.name} ORDER BY order_id") == [
        [i] for i in sorted([*later, "bad1", "bad2"])
    ]
    wait_for(lambda: sql(f"SELECT count() FROM qty_{pool.name}") == [[5 + 5]], message="backfill and loads")
    assert sql(
        f"SELECT order_id FROM qty_{pool.name} WHERE order_id NOT LIKE 'early%' ORDER BY order_id"
    ) == [[i] for i in sorted(later)]

    failures = list(ViewFailure.objects.filter(mv=strict).order_by("delivery_id"))
    assert len(failures) == 2 and not ViewFailure.objects.filter(mv=ids).exists()
    assert all("Cannot parse string 'abc' as Int32" in f.error for f in failures)
    assert [f.delivery.request_id for f in failures] == [
        d.request_id for d in Delivery.objects.filter(pool=pool).order_by("id")[1:4:2]
    ]

    # The view's page lists them with the error; the admin too.
    page = staff.get(reverse("views_mv:detail", args=[strict.name])).content.decode()
    assert "Rows this view could not transform" in page and "Cannot parse string" in page
    assert failures[0].event_id in page
    assert (
        failures[0].event_id in staff.get(reverse("admin:views_mv_viewfailure_changelist")).content.decode()
    )

    # A retry before the fix changes nothing and says so.
    assert warehouse_client.call(warehouse_retry_view_failures, strict.pk) == {
        "repaired": 0,
        "still_failing": 2,
    }
    assert ViewFailure.objects.filter(mv=strict, attempts=2).count() == 2
    # The view is fixed on its page, then retried twice: the two rows arrive, once.
    fixed = strict.sql.replace("toInt32(", "toInt32OrZero(")
    assert staff.post(reverse("views_mv:edit_sql", args=[strict.name]), {"sql": fixed}).status_code == 302
    assert MaterializedView.objects.get(pk=strict.pk).sql == fixed
    staff.post(reverse("views_mv:retry_failures", args=[strict.name]))
    wait_for(
        lambda: not ViewFailure.objects.filter(mv=strict, resolved_at__isnull=True).exists(), message="repair"
    )
    assert warehouse_client.call(warehouse_retry_view_failures, strict.pk) == {
        "repaired": 0,
        "still_failing": 0,
    }
    assert sql(f"SELECT count(), uniqExact(order_id), countIf(qty = 0) FROM qty_{pool.name}") == [[12, 12, 2]]
    assert DataPool.objects.get(pk=pool.pk).record_count == 12

    # Later records go through the fixed view at once.
    land_direct(pool, [bad_quantity("bad3")])
    all_loaded(pool, 5)
    assert sql(f"SELECT count() FROM qty_{pool.name} WHERE order_id = 'bad3'") == [[1]]


def test_fixing_a_view_keeps_its_source_and_its_target_columns(pool, warehouse_worker):
    mv = services.create_mv(
        f"v_{pool.name}", f"SELECT keys.order_id.S AS order_id FROM {pool.name}", target_pool=f"t_{pool.name}"
    )
    with pytest.raises(ValidationError, match="has no column"):
        services.replace_sql(mv, f"SELECT keys.order_id.S AS order_id, event_name FROM {pool.name}")
    with pytest.raises(ValidationError, match="fed by a Materialized View"):
        services.replace_sql(mv, f"SELECT order_id FROM t_{pool.name}")
    services.replace_sql(mv, f"SELECT toString(keys.order_id.S) AS order_id FROM {pool.name}")
    assert MaterializedView.objects.get(pk=mv.pk).sql.startswith("SELECT toString(")


def test_a_view_whose_stored_sql_the_guard_refuses_sets_its_deliveries_aside(pool, warehouse_worker):
    mv = services.create_mv(
        f"v_{pool.name}", f"SELECT keys.order_id.S AS order_id FROM {pool.name}", target_pool=f"t_{pool.name}"
    )
    wait_for(
        lambda: MaterializedView.objects.filter(pk=mv.pk, status="active").exists(), message="view attached"
    )
    good_sql = MaterializedView.objects.get(pk=mv.pk).sql
    # The stored SQL is changed behind the wizard's back (the database, a restore).
    MaterializedView.objects.filter(pk=mv.pk).update(
        sql=f"SELECT file('/etc/hostname') AS order_id FROM {pool.name}"
    )
    land_direct(pool, [change_record("o1"), change_record("o2")])
    all_loaded(pool, 1)
    assert sql(f"SELECT count() FROM {pool.name}") == [[2]]  # the pool is not held back
    failure = ViewFailure.objects.get(mv=mv)
    assert failure.event_id == "*" and "file() is not allowed" in failure.error
    assert sql(f"SELECT count() FROM t_{pool.name}") == [[0]]

    MaterializedView.objects.filter(pk=mv.pk).update(sql=good_sql)
    assert warehouse_client.call(warehouse_retry_view_failures, mv.pk) == {"repaired": 1, "still_failing": 0}
    assert sql(f"SELECT order_id FROM t_{pool.name} ORDER BY 1") == [["o1"], ["o2"]]
