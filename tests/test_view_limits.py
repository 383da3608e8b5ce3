"""A view's insert over a batch has its own time and memory limits (issue 18): a view that is
cheap on today's data but expensive on one crafted record no longer holds its pool's loads past
every limit. Past a limit, the batch's records are the view's failures, the pool and its other
views go on loading, and the view's page says why."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from console import warehouse_client
from console.tasks import run_sql
from pools.models import Delivery
from tests.helpers.firehose import change_record
from tests.helpers.pools import land_direct
from tests.helpers.waiting import wait_for
from tests.helpers.workers import WorkerProcess
from views_mv import services
from views_mv.models import MaterializedView, ViewFailure

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

# An attribute's value sizes an array: harmless for 3, 3 GB for 400 million.
COSTLY = (
    "SELECT keys.order_id.S AS order_id, "
    "length(arrayMap(x -> sipHash64(x), "
    "range(assumeNotNull(toUInt64OrNull(toString(new_image.quantity.N)))))) AS work "
    "FROM {pool}"
)


@pytest.fixture
def limited_views_worker(no_worker):
    worker = WorkerProcess(env={"VIEW_MAX_MEMORY_BYTES": str(256 * 2**20), "VIEW_MAX_EXECUTION_SECONDS": "5"})
    worker.start()
    yield worker
    worker.stop()


def rows(query: str) -> list[list]:
    result = warehouse_client.call(run_sql, query)
    assert "error" not in result, result
    return result["rows"]


def test_a_view_past_its_limits_fails_its_records_and_the_pool_goes_on(
    pool, limited_views_worker, admin_client
):
    land_direct(pool, [change_record("cheap", quantity=3)])
    wait_for(lambda: Delivery.objects.filter(pool=pool, status="loaded").count() == 1, message="first load")
    costly = services.create_mv(
        f"costly_{pool.name}", COSTLY.format(pool=pool.name), target_pool=f"work_{pool.name}"
    )
    plain = services.create_mv(
        f"plain_{pool.name}",
        f"SELECT keys.order_id.S AS order_id, event_name FROM {pool.name}",
        target_pool=f"plain_{pool.name}",
    )

    for mv in (costly, plain):
        wait_for(
            lambda mv=mv: MaterializedView.objects.get(pk=mv.pk).status == "active", message="view attached"
        )

    started = time.monotonic()
    land_direct(pool, [change_record("crafted", quantity=400_000_000), change_record("next", quantity=2)])
    wait_for(
        lambda: Delivery.objects.filter(pool=pool, status="loaded").count() == 2, timeout=60, message="load"
    )
    assert time.monotonic() - started < 30

    # The pool and the other view have every record; the costly view lists the batch as failures.
    assert rows(f"SELECT count() FROM {pool.name}") == [[3]]
    assert sorted(r[0] for r in rows(f"SELECT order_id FROM {plain.target_pool.name}")) == ["crafted", "next"]
    failures = ViewFailure.objects.filter(mv=costly)
    assert failures.exists()
    error = failures.first().error
    assert "VIEW_MAX_MEMORY_BYTES" in error or "VIEW_MAX_EXECUTION_SECONDS" in error, error

    # The view's page says why.
    page = admin_client.get(reverse("views_mv:detail", args=[costly.name]))
    assert "VIEW_MAX_" in page.content.decode()

    # A later delivery of cheap records goes through the costly view again.
    land_direct(pool, [change_record("later", quantity=1)])
    wait_for(
        lambda: Delivery.objects.filter(pool=pool, status="loaded").count() == 3, timeout=60, message="load"
    )
    assert ["later", 1] in rows(f"SELECT order_id, work FROM {costly.target_pool.name}")
