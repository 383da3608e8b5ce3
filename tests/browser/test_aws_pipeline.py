"""A user adds an AWS connection (a moto server), tests it, connects a pool's DynamoDB table through
the wizard and watches the pipeline's steps complete; a `default` worker does the AWS work."""

from __future__ import annotations

import threading

import pytest
from django.db import connections
from playwright.sync_api import expect

from pools.aws.models import Pipeline
from pools.models import Delivery
from tests.browser.conftest import SCREENSHOTS, login, screenshot
from tests.helpers.firehose import change_record
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def start_relay(base_url: str) -> threading.Event:
    from pools.aws.sandbox import Relay

    stop = threading.Event()

    def run() -> None:
        try:
            Relay(base_url, retry_seconds=0).run_forever(stop, interval=0.3)
        finally:
            connections.close_all()

    threading.Thread(target=run, daemon=True).start()
    return stop


def start_reader() -> threading.Event:
    from pools.pull.runner import Reader

    stop = threading.Event()

    def run() -> None:
        try:
            Reader(idle_seconds=0.2).run(stop)
        finally:
            connections.close_all()

    threading.Thread(target=run, daemon=True).start()
    return stop


def test_a_table_read_by_dynamodb_streams_pull(
    page, live_server, user, moto, default_worker, warehouse_worker
):
    """No public endpoint, no relay: Shoal's reader reads moto's own DynamoDB stream."""
    from pools.aws import sandbox
    from pools.aws.clients import connect
    from pools.services import create_pool
    from tests.helpers.aws import make_connection

    connection = make_connection(moto.url, name="Sandbox (moto)")
    sandbox.create_orders_table(connect(connection), items=3)
    pool = create_pool("orders_pulled", description="Orders read from the table's DynamoDB stream")

    login(page, live_server)
    page.goto(live_server.url + pool.get_absolute_url())
    page.click("a:has-text('Connect DynamoDB')")
    page.locator("table.aws-table-pick tr", has_text="orders").locator("input[type=radio]").check()
    page.click("button:has-text('Continue')")
    page.locator("label.choice-card", has_text="DynamoDB Streams pull").click()
    # Where the pull starts: asked for pulls only; the time only for "From a time".
    assert page.locator("fieldset.pull-start").is_visible()
    assert not page.locator("input[name=start_at]").is_visible()
    page.locator("label.aws-radio", has_text="From a time").click()
    assert page.locator("input[name=start_at]").is_visible()
    page.locator("label.aws-radio", has_text="From now").click()
    screenshot(page, "aws-wizard-delivery-pull")
    page.click("button:has-text('Continue')")
    assert "DynamoDB Streams pull" in page.locator("dl.kv").inner_text()
    assert "from now" in page.locator("dl.kv").inner_text()
    assert page.locator(".aws-warn-box").count() == 0  # no public endpoint needed
    screenshot(page, "aws-wizard-review-pull")
    reader = start_reader()  # the `reader` process of `make run` / `make demo`
    try:
        page.click("button:has-text('Create pipeline')")
        page.locator("h1 .badge-active").wait_for(timeout=30_000)
        page.click("button:has-text('Put a sample order')")
        wait_for(
            lambda: Delivery.objects.filter(pool=pool, status="loaded").exists(), message="a pulled change"
        )
        page.reload()
        card = page.locator("#pull")
        assert "running" in card.inner_text() and "open" in card.inner_text()
        screenshot(page, "aws-pipeline-pull")
    finally:
        reader.set()


def test_connect_dynamodb_from_the_console(page, live_server, user, moto, default_worker):
    from pools.aws import sandbox
    from pools.aws.clients import connect
    from pools.services import create_pool
    from tests.helpers.aws import make_connection

    # The user's AWS side: the guide's orders table (created with a throwaway connection).
    sandbox.create_orders_table(connect(make_connection(moto.url, name="setup")), items=5)
    from pools.aws.models import AwsConnection

    AwsConnection.objects.filter(name="setup").delete()
    pool = create_pool("my_dynamo_orders_change_events", description="Taqueria orders from DynamoDB")

    login(page, live_server)
    page.click("nav >> text=AWS Connections")
    page.click("text=New connection")
    page.fill("input[name=name]", "Sandbox (moto)")
    page.select_option("select[name=region]", "us-east-1")
    page.check("input[name=auth_method][value=access_key]")
    page.fill("input[name=access_key_id]", "testing")
    page.fill("input[name=secret_access_key]", "testing")
    page.click("summary:has-text('Local emulator')")
    page.fill("input[name=endpoint_url]", moto.url)
    page.click("button:has-text('Save connection')")
    page.click("#test-connection")
    assert page.locator("#account-id").inner_text() == "123456789012"
    screenshot(page, "aws-connection")

    page.goto(live_server.url + pool.get_absolute_url())
    assert page.locator(".aws-warn").is_visible()  # PUBLIC_BASE_URL is http here
    page.click("a:has-text('Connect DynamoDB')")
    row = page.locator("table.aws-table-pick tr", has_text="orders")
    assert "order_id (S)" in row.inner_text() and "timestamp (S)" in row.inner_text()
    row.locator("input[type=radio]").check()
    screenshot(page, "aws-wizard-table")
    page.click("button:has-text('Continue')")

    assert page.locator("input[name=mode][value=firehose]").is_checked()  # the guide's path first
    assert not page.locator("fieldset.pull-start").is_visible()  # Firehose reads from its creation
    screenshot(page, "aws-wizard-delivery")
    page.click("button:has-text('Continue')")

    assert page.locator("input[name=new_name]").input_value() == "orders-cdc"
    screenshot(page, "aws-wizard-stream")
    page.click("button:has-text('Continue')")

    assert page.locator("input[name=endpoint_url]").input_value() == pool.endpoint_url()
    assert page.locator("input[name=retry_duration_s]").input_value() == "7200"
    assert page.locator("input[name=buffer_size_mib]").input_value() == "1"
    screenshot(page, "aws-wizard-firehose")
    page.fill("input[name=buffer_size_mib]", "65")
    page.click("button:has-text('Continue')")
    assert "less than or equal to 64" in page.locator(".aws-field.has-error").inner_text()
    page.fill("input[name=buffer_size_mib]", "1")
    page.click("button:has-text('Continue')")

    assert "Only then" in page.locator("ol.aws-plan").inner_text()
    screenshot(page, "aws-wizard-review")
    relay = start_relay(live_server.url)  # the sandbox relay, as `make demo` runs it
    page.click("button:has-text('Create pipeline')")

    # The steps appear as the worker completes them; the page reloads itself when all are done.
    page.locator("h1 .badge-active").wait_for(timeout=30_000)
    steps = page.locator("ol.aws-step-list li.aws-step")
    assert steps.count() == 5
    assert page.locator("li.aws-step-done").count() == 4
    assert "Sandbox relay" in page.locator("li.aws-step[data-key=destination]").inner_text()
    assert page.locator("#progress-percent").inner_text() == "100%"
    page.locator("#failures >> text=No failed deliveries").wait_for(timeout=20_000)
    assert Pipeline.objects.get(pool=pool).status == Pipeline.Status.ACTIVE
    screenshot(page, "aws-pipeline")

    page.click("button:has-text('Put a sample order')")
    assert "into orders" in page.locator(".flash").inner_text()
    wait_for(lambda: Delivery.objects.filter(pool=pool).exists(), message="the relay's delivery")
    relay.set()

    # Firehose gives up on a batch: beat's check finds it, and the page shows why.
    from pools.aws.clients import connect
    from pools.aws.tasks import sweep_aws
    from tests.helpers.aws import failed_object

    pipeline = Pipeline.objects.get(pool=pool)
    connect(pipeline.connection).client("s3").put_object(
        Bucket=pipeline.bucket_name,
        Key=f"{pipeline.error_prefix}2024/05/08/13/orders-to-shoal-1-2024-05-08-13-20-37-x",
        Body=failed_object([change_record("order-9")]),
    )
    pipeline_url = page.url
    sweep_aws()
    failures = page.locator("#failures")
    expect(failures).to_contain_text("HttpEndpoint.DestinationException", timeout=45_000)
    expect(failures).to_contain_text("Unauthorized")
    failures.screenshot(path=str(SCREENSHOTS / "aws-failures.png"))
    assert page.url == pipeline_url

    page.goto(live_server.url + pool.get_absolute_url())
    assert "Active" in page.locator(".actions a:has-text('AWS pipeline')").inner_text()
    page.locator(".page-head").screenshot(path=str(SCREENSHOTS / "aws-pool-actions.png"))

    page.click("nav >> text=AWS Connections")
    assert "my_dynamo_orders_change_events" in page.locator("table").nth(1).inner_text()
    screenshot(page, "aws-connections")
