"""The wizard and the Celery chain end to end: pages → `default` worker → moto → pipeline page."""

from __future__ import annotations

import pytest

from pools.aws.models import Pipeline
from tests.helpers.roles import make_user
from tests.helpers.waiting import wait_for


@pytest.fixture
def maria(client, django_user_model):
    client.force_login(make_user("admin", "maria"))
    return client


def _finished(pipeline_pk: int) -> Pipeline | None:
    pipeline = Pipeline.objects.get(pk=pipeline_pk)
    return None if pipeline.running else pipeline


def test_the_wizard_creates_a_pipeline_that_the_chain_provisions(
    maria, pool, aws, orders_table, default_worker
):
    start = maria.get(f"/aws/pools/{pool.name}/connect/")
    assert start.status_code == 200
    assert (
        b"orders" in start.content and b"order_id (S)" in start.content and b"timestamp (S)" in start.content
    )
    assert b"Firehose cannot deliver to this Shoal yet" in start.content  # PUBLIC_BASE_URL is http
    # Choosing another connection re-renders the table list only (htmx).
    part = maria.get(
        f"/aws/pools/{pool.name}/connect/?connection={aws.connection.pk}", HTTP_HX_REQUEST="true"
    )
    assert part.content.lstrip().startswith(b'<div id="wizard-source">')
    assert b"order_id (S)" in part.content

    step = maria.post(
        f"/aws/pools/{pool.name}/connect/", {"connection": aws.connection.pk, "table": "orders"}
    )
    assert step.url == f"/aws/pools/{pool.name}/connect/delivery/"
    delivery = maria.get(step.url)
    assert b"Firehose push" in delivery.content and b"DynamoDB Streams pull" in delivery.content
    step = maria.post(step.url, {"mode": "firehose"})
    assert step.url == f"/aws/pools/{pool.name}/connect/stream/"
    page = maria.get(step.url)
    assert b'value="orders-cdc"' in page.content
    step = maria.post(step.url, {"mode": "new", "new_name": "orders-cdc"})
    assert step.url == f"/aws/pools/{pool.name}/connect/firehose/"
    page = maria.get(step.url)
    form = page.context["form"]
    assert form.initial["endpoint_url"] == pool.endpoint_url()
    assert (
        form.initial["retry_duration_s"],
        form.initial["buffer_size_mib"],
        form.initial["content_encoding"],
    ) == (
        7200,
        1,
        "NONE",
    )
    data = {name: form.initial[name] for name in form.fields if form.initial.get(name) is not None}
    bad = maria.post(step.url, {**data, "buffer_size_mib": 65, "retry_duration_s": 7201})
    assert bad.status_code == 200 and b"less than or equal to 64" in bad.content
    step = maria.post(step.url, data)
    assert step.url == f"/aws/pools/{pool.name}/connect/review/"
    review = maria.get(step.url)
    assert b"Only then" in review.content and data["new_bucket"].encode() in review.content
    # One truth about timestamps and about existing items, as the pipeline page will state them.
    assert b"(MICROSECOND timestamps" in review.content and b"MILLISECOND" not in review.content
    assert b"not copied" not in review.content and b"Backfill existing items" in review.content

    created = maria.post(step.url)
    pipeline = Pipeline.objects.get(pool=pool)
    assert created.url == f"/aws/pipelines/{pipeline.pk}/"
    done = wait_for(lambda: _finished(pipeline.pk), message="provisioning")
    assert done.status == Pipeline.Status.ACTIVE
    states = {s.key: s.state for s in done.phase_steps()}
    assert states == {
        "stream": "done",
        "bucket": "done",
        "role": "done",
        "firehose": "done",
        "destination": "skipped",
    }
    assert aws.client("firehose").list_delivery_streams()["DeliveryStreamNames"] == [data["firehose_name"]]

    page = maria.get(created.url)
    assert b"MICROSECOND" in page.content and b"MILLISECOND" not in page.content
    assert b"Backfill existing items" in page.content
    assert b"Sandbox." in page.content and b"Put a sample order" in page.content
    assert b"Sandbox relay" in page.content  # the destination step, plainly labelled
    assert maria.get(f"/pools/{pool.name}/").content.count(b"AWS pipeline") == 1
    # The wizard refuses a second pipeline for the pool.
    assert maria.get(f"/aws/pools/{pool.name}/connect/").url == created.url


def test_the_wizard_creates_a_dynamodb_streams_pull_with_no_firehose(
    maria, pool, aws, orders_table, default_worker
):
    step = maria.post(
        f"/aws/pools/{pool.name}/connect/", {"connection": aws.connection.pk, "table": "orders"}
    )
    delivery = maria.get(step.url).content.decode()
    assert 'name="start" value="now"' in delivery and 'name="start_at"' in delivery
    refused = maria.post(step.url, {"mode": "streams_pull", "start": "at"})
    assert refused.status_code == 200 and b"Give the time to start at" in refused.content
    step = maria.post(step.url, {"mode": "streams_pull", "start": "now"})
    assert step.url == f"/aws/pools/{pool.name}/connect/review/"  # no Kinesis, no Firehose to ask about
    review = maria.get(step.url)
    assert b"from now (the changes made after you create the pipeline)" in review.content
    assert b"DynamoDB Streams pull" in review.content and b"dynamodb:GetRecords" in review.content
    assert b"<dt>Firehose stream</dt>" not in review.content
    assert b"Firehose cannot deliver" not in review.content  # no public endpoint needed
    created = maria.post(step.url)
    pipeline = Pipeline.objects.get(pool=pool)
    assert pipeline.delivery_mode == Pipeline.Mode.STREAMS
    assert pipeline.pull_start == Pipeline.Start.NOW and pipeline.pull_start_at is not None
    done = wait_for(lambda: _finished(pipeline.pk), message="provisioning")
    assert done.status == Pipeline.Status.ACTIVE
    assert {s.key: s.state for s in done.phase_steps()} == {"table_stream": "done"}
    assert not done.table_stream_created  # the sandbox's table streamed already: left as it was
    assert aws.client("firehose").list_delivery_streams()["DeliveryStreamNames"] == []
    page = maria.get(created.url)
    assert b"Reader" in page.content and b"not running" in page.content  # no reader in this test
    assert b"Shoal&#x27;s reader" in page.content or b"Shoal's reader" in page.content
    assert b"Firehose settings" not in page.content


def test_the_chain_stops_at_a_failed_step_and_retry_resumes_there(
    maria, pool, aws, orders_table, default_worker
):

    from pools.aws import pipelines

    pipeline = pipelines.create_pipeline(
        pool,
        aws.connection,
        table_name="orders",
        stream_name="orders-cdc",
        bucket_name="ab",  # S3 refuses it: the chain must stop at the bucket
        role_name="shoal-firehose-orders",
        firehose_name="orders-to-shoal",
        http_endpoint_name="Shoal orders",
        endpoint_url=pool.endpoint_url(),
    )
    failed = wait_for(lambda: _finished(pipeline.pk), message="the failure")
    assert failed.status == Pipeline.Status.FAILED
    states = [s.state for s in failed.phase_steps()]
    assert states == ["done", "failed", "pending", "pending", "pending"]
    progress = maria.get(f"/aws/pipelines/{pipeline.pk}/progress/")
    assert b"InvalidBucketName" in progress.content and b"Retry from" in progress.content
    assert (
        b'hx-trigger="every 1s, shoal:shown from:document"' not in progress.content
    )  # not polling once stopped

    Pipeline.objects.filter(pk=pipeline.pk).update(bucket_name="shoal-failed-orders-fixed")
    assert maria.post(f"/aws/pipelines/{pipeline.pk}/retry/").status_code == 302
    assert b'hx-trigger="every 1s, shoal:shown from:document"' in maria.get(
        f"/aws/pipelines/{pipeline.pk}/progress/"
    ).content or _finished(pipeline.pk)
    done = wait_for(lambda: _finished(pipeline.pk), message="the retry")
    assert done.status == Pipeline.Status.ACTIVE
    steps = {s.key: s for s in done.phase_steps()}
    assert (steps["stream"].attempts, steps["bucket"].attempts) == (1, 2)
    assert len(aws.client("kinesis").list_streams()["StreamNames"]) == 1

    # Tear down through the page: what Shoal created goes (the emulator's streaming step is skipped).
    assert maria.post(f"/aws/pipelines/{pipeline.pk}/teardown/", {}).status_code == 302
    removed = wait_for(lambda: _finished(pipeline.pk), message="teardown")
    assert removed.status == Pipeline.Status.REMOVED
    assert aws.client("kinesis").list_streams()["StreamNames"] == []
    assert aws.client("s3").list_buckets()["Buckets"] == []
    assert maria.get(f"/pools/{pool.name}/").content.count(b"Connect DynamoDB") == 1
