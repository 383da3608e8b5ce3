"""A user backfills the items a table held before its pipeline existed: the pipeline page offers it
once the table streams, and shows the parallel Scan's progress until it is done."""

from __future__ import annotations

import pytest

from pools.aws.models import Pipeline, Snapshot
from tests.browser.conftest import login, screenshot
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_backfill_existing_items_from_the_pipeline_page(
    page, live_server, user, aws, default_worker, warehouse_worker
):
    from pools.aws import pipelines, sandbox
    from tests.helpers.pools import fresh_pool

    sandbox.create_orders_table(aws, items=60)  # orders placed before the pipeline existed
    pool = fresh_pool("my_dynamo_orders_change_events", description="Taqueria orders from DynamoDB")
    pipeline = pipelines.create_pipeline(
        pool,
        aws.connection,
        start=False,
        table_name="orders",
        table_arn="arn:aws:dynamodb:us-east-1:123456789012:table/orders",
        stream_name="orders-cdc",
        bucket_name="shoal-failed-orders-snapshot",
        role_name="shoal-firehose-orders-to-shoal",
        firehose_name="orders-to-shoal",
        http_endpoint_name="Shoal my_dynamo_orders_change_events",
        endpoint_url=pool.endpoint_url(),
    )

    login(page, live_server)
    # Before the table streams, a backfill could miss the changes made in between: not offered.
    page.goto(live_server.url + pipeline.get_absolute_url())
    assert "Available once the pipeline is active" in page.locator("#snapshot").inner_text()
    assert page.locator("#snapshot-start").count() == 0

    # The page shows the pipeline as provisioning (create_pipeline's state) and polls its steps;
    # when the pipeline becomes active, that poll answers HX-Refresh and the page reloads itself.
    # Wait for that reload rather than racing it with a page.goto: the reload arriving while a
    # goto is under way aborted the goto (net::ERR_ABORTED), at random.
    with page.expect_navigation(timeout=30_000):
        pipelines.resume(pipeline, "provision")  # the `default` worker provisions it (moto)
        wait_for(
            lambda: Pipeline.objects.get(pk=pipeline.pk).status == Pipeline.Status.ACTIVE,
            timeout=30,
            message="the pipeline to become active",
        )
    page.wait_for_load_state()
    card = page.locator("#snapshot")
    assert "already streams every change" in card.inner_text()
    page.fill("input[name=total_segments]", "4")
    page.fill("input[name=max_rcu_per_second]", "8")  # moto charges 1 RCU a page: ~2 s in all
    page.fill("input[name=page_limit]", "4")
    page.click("#snapshot-start")
    assert "Backfilling the items of orders" in page.locator(".flash").inner_text()

    # The card polls while the scan runs, and shows the result when it is done.
    page.locator("#snapshot .snapshot-state-done").wait_for(timeout=20_000)
    snapshot = Snapshot.objects.get(pipeline=pipeline)
    assert snapshot.status == Snapshot.Status.DONE and snapshot.items_done == 60
    assert snapshot.runs == 1 and snapshot.throttled_seconds > 0
    assert page.locator("#snapshot-items").inner_text() == "60 of ~60 items"
    assert page.locator("#snapshot-percent").inner_text() == "100%"
    assert page.locator("#snapshot-segments").inner_text() == "4 / 4"
    assert page.locator("#snapshot-pages").inner_text() == str(snapshot.pages_done)
    assert "Scan again" in page.locator("#snapshot-start").inner_text()
    page.locator("#failures >> text=No failed deliveries").wait_for(timeout=20_000)
    page.locator("#snapshot").scroll_into_view_if_needed()
    screenshot(page, "aws-snapshot")

    # For a table too big to Scan: Export to S3, with point-in-time recovery turned on from the
    # card (in the sandbox, Shoal writes the export in AWS's layout, since moto does not).
    plan = page.locator("#snapshot-plan")
    assert "A Scan is fine at this size" in plan.inner_text()
    assert "off: tick below to turn it on" in page.locator("#snapshot-pitr").inner_text()
    page.check("input[name=method][value=export]")
    page.check("input[name=enable_pitr]")
    page.click("#snapshot-start")
    page.locator("#snapshot .snapshot-state-done").wait_for(timeout=30_000)
    export = Snapshot.objects.filter(pipeline=pipeline).first()
    assert export.method == "export" and export.status == Snapshot.Status.DONE, export.error
    assert export.items_done == 60 and export.export_status == "COMPLETED"
    assert "completed" in page.locator("#snapshot-export-status").inner_text()
    assert (
        page.locator("#snapshot-files").inner_text()
        == f"{export.export_files_total} / {export.export_files_total}"
    )
    page.locator("#snapshot").scroll_into_view_if_needed()
    screenshot(page, "aws-snapshot-export")
