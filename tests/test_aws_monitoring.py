"""Monitoring for delivery failures and replaying them into the pool (real moto, real worker)."""

from __future__ import annotations

import base64
import gzip
import json

from pools.aws import monitoring
from pools.aws.models import Pipeline
from pools.models import Delivery
from tests.helpers.aws import failed_object
from tests.helpers.firehose import change_record
from tests.helpers.roles import make_user
from tests.helpers.waiting import wait_for


def sandbox_pipeline(pool, aws) -> Pipeline:
    aws.client("s3").create_bucket(Bucket="shoal-failed-orders")
    return Pipeline.objects.create(
        pool=pool,
        connection=aws.connection,
        status=Pipeline.Status.ACTIVE,
        table_name="orders",
        stream_name="orders-cdc",
        bucket_name="shoal-failed-orders",
        bucket_new=False,
        role_name="r",
        firehose_name="orders-to-shoal",
        http_endpoint_name="Shoal",
        endpoint_url=pool.endpoint_url(),
    )


def test_it_reads_error_records_in_any_layout():
    records = [change_record("order-1"), change_record("order-2", "MODIFY")]
    body = failed_object(records)
    expected = [base64.b64encode(json.dumps(r).encode()).decode() for r in records]
    assert monitoring.parse_error_records(body) == expected
    assert monitoring.parse_error_records(body.replace(b"\n", b"")) == expected  # concatenated
    assert monitoring.parse_error_records(gzip.compress(body)) == expected
    assert monitoring.parse_error_records(b'{"no": "rawData"}\n') == []


def test_failed_deliveries_are_monitored_replayed_once_and_archived(pool, aws, warehouse_worker):
    pipeline = sandbox_pipeline(pool, aws)
    s3 = aws.client("s3")
    assert monitoring.failed_deliveries(pipeline, aws).count == 0

    records = [change_record(f"order-{n}", quantity=n) for n in range(1, 4)] + [
        change_record("order-1", "MODIFY")
    ]
    key_a = "failed/2024/05/08/13/orders-to-shoal-1-2024-05-08-13-20-37-a"
    key_b = "failed/2024/05/08/14/orders-to-shoal-1-2024-05-08-14-01-02-b"
    s3.put_object(Bucket=pipeline.bucket_name, Key=key_a, Body=failed_object(records[:3]))
    s3.put_object(Bucket=pipeline.bucket_name, Key=key_b, Body=failed_object(records[3:]))
    s3.put_object(Bucket=pipeline.bucket_name, Key="backup/unrelated", Body=b"{}")

    failed = monitoring.failed_deliveries(pipeline, aws)
    assert failed.count == 2 and failed.objects[0]["key"] in (key_a, key_b) and failed.bytes > 0
    # Firehose's reason, from the error records themselves.
    reasons = {o["key"]: o["reasons"] for o in failed.objects}
    assert reasons[key_a] == [
        {
            "code": "HttpEndpoint.DestinationException",
            "message": json.loads(failed_object(records[:1]))["errorMessage"],
            "records": 3,
        }
    ]
    status = monitoring.check(pipeline, aws)
    assert status["failed"]["count"] == 2 and status["bucket"] == "exists"
    assert status["stream"] == "not found"  # nothing else exists in this test

    result = monitoring.replay_failed(pipeline, aws)
    assert (result.objects, result.records, result.deliveries_stored, result.archived) == (2, 4, 2, 2)
    assert not result.errors
    deliveries = Delivery.objects.filter(pool=pool)
    assert deliveries.count() == 2
    assert all(d.request_id.startswith("s3-replay-") for d in deliveries)
    wait_for(lambda: not deliveries.exclude(status="loaded").exists(), message="replayed deliveries loaded")
    pool.refresh_from_db()
    assert pool.record_count == 4 and pool.quarantined_count == 0

    listed = {o["Key"] for o in s3.list_objects_v2(Bucket=pipeline.bucket_name)["Contents"]}
    assert listed == {"archived/" + key_a, "archived/" + key_b, "backup/unrelated"}
    assert monitoring.failed_deliveries(pipeline, aws).count == 0

    # The same object again (a replay interrupted before archiving, then run again): stored once.
    s3.put_object(Bucket=pipeline.bucket_name, Key=key_a, Body=failed_object(records[:3]))
    again = monitoring.replay_failed(pipeline, aws)
    assert (again.deliveries_stored, again.deliveries_already_stored, again.archived) == (0, 1, 1)
    assert Delivery.objects.filter(pool=pool).count() == 2
    pool.refresh_from_db()
    assert pool.record_count == 4


def test_replay_from_the_page_runs_in_the_default_worker(
    pool, aws, client, django_user_model, default_worker
):

    pipeline = sandbox_pipeline(pool, aws)
    aws.client("s3").put_object(
        Bucket=pipeline.bucket_name, Key="failed/x", Body=failed_object([change_record("order-9")])
    )
    client.force_login(make_user("admin", "maria"))
    page = client.get(f"/aws/pipelines/{pipeline.pk}/")
    assert page.status_code == 200 and b"Monitor for delivery failures" in page.content
    wait_for(lambda: Pipeline.objects.get(pk=pipeline.pk).checked_at, message="status check")
    status = client.get(f"/aws/pipelines/{pipeline.pk}/status/")
    assert b"1 failed delivery" in status.content

    assert client.post(f"/aws/pipelines/{pipeline.pk}/replay/").status_code == 302
    wait_for(lambda: Pipeline.objects.get(pk=pipeline.pk).last_replay.get("archived") == 1, message="replay")
    assert Delivery.objects.filter(pool=pool, request_id__startswith="s3-replay-").count() == 1
    wait_for(
        lambda: Pipeline.objects.get(pk=pipeline.pk).resource_status.get("failed", {}).get("count") == 0,
        message="re-check after the replay",
    )
    assert b"No failed deliveries" in client.get(f"/aws/pipelines/{pipeline.pk}/status/").content


def test_beat_refreshes_failed_deliveries_with_their_reason_and_the_page_shows_it(
    pool, aws, default_worker, client, settings
):
    from django.urls import reverse

    from pools.aws.tasks import sweep_aws

    assert settings.CELERY_BEAT_SCHEDULE["aws-status-and-snapshots"]["schedule"] <= 60
    pipeline = sandbox_pipeline(pool, aws)
    key = "failed/2024/05/08/13/orders-to-shoal-1-2024-05-08-13-20-37-c"
    aws.client("s3").put_object(
        Bucket=pipeline.bucket_name, Key=key, Body=failed_object([change_record("o")])
    )
    sweep_aws()  # what beat runs; nobody pressed "Check now"
    wait_for(
        lambda: (Pipeline.objects.get(pk=pipeline.pk).resource_status.get("failed") or {}).get("count") == 1,
        timeout=30,
        message="beat's check",
    )
    from tests.helpers.roles import signed_in

    signed_in(client, "viewer")
    page = client.get(reverse("aws:pipeline_status", args=[pipeline.pk])).content.decode()
    assert key in page and "HttpEndpoint.DestinationException" in page and "Unauthorized" in page
    assert 'hx-trigger="every 30s, shoal:shown from:document"' in page  # the region keeps itself current
