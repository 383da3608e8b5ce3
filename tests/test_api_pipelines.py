"""AWS pipelines through the management API, against moto and a real `default` worker: status of
each step, retry from the failed step (admin keys only), tear-down."""

from __future__ import annotations

import json

from console.access.api import keys
from pools.aws import pipelines
from pools.aws.models import Pipeline
from tests.helpers.servers import http
from tests.helpers.waiting import wait_for


def call(live_server, method, path, key, body=None):
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    data = json.dumps(body).encode() if body is not None else None
    return http(method, live_server.url + "/api/v1" + path, data, headers)


def _finished(pk: int):
    pipeline = Pipeline.objects.get(pk=pk)
    return None if pipeline.running else pipeline


def test_status_retry_and_teardown(live_server, pool, aws, orders_table, default_worker):
    admin = keys.create_key("aws-admin", "manage", role="admin").key
    editor = keys.create_key("aws-editor", "manage").key
    pipeline = pipelines.create_pipeline(
        pool,
        aws.connection,
        table_name="orders",
        stream_name="orders-cdc",
        bucket_name="ab",  # S3 refuses it: the chain stops at the bucket
        role_name="shoal-firehose-orders",
        firehose_name="orders-to-shoal",
        http_endpoint_name="Shoal orders",
        endpoint_url=pool.endpoint_url(),
    )
    wait_for(lambda: _finished(pipeline.pk), message="the failure")
    status = call(live_server, "GET", f"/pipelines/{pipeline.pk}", editor).json()
    assert status["status"] == "failed" and status["phase"] == "provision"
    assert (status["delivery_mode"], status["pull_start"], status["pull_start_at"]) == (
        "firehose",
        "oldest",
        None,
    )
    assert [s["state"] for s in status["steps"]][:2] == ["done", "failed"]
    assert "InvalidBucketName" in status["steps"][1]["error"]
    assert [p["id"] for p in call(live_server, "GET", "/pipelines", editor).json()] == [pipeline.pk]

    assert call(live_server, "POST", f"/pipelines/{pipeline.pk}/retry", editor).status == 403
    Pipeline.objects.filter(pk=pipeline.pk).update(bucket_name="shoal-failed-orders-api")
    retried = call(live_server, "POST", f"/pipelines/{pipeline.pk}/retry", admin)
    assert retried.status == 202, retried.body
    done = wait_for(lambda: _finished(pipeline.pk), message="the retry")
    assert done.status == Pipeline.Status.ACTIVE

    torn = call(live_server, "POST", f"/pipelines/{pipeline.pk}/teardown", admin, {"keep_bucket": False})
    assert torn.status == 202 and torn.json()["phase"] == "teardown"
    removed = wait_for(lambda: _finished(pipeline.pk), message="teardown")
    assert removed.status == Pipeline.Status.REMOVED
    assert aws.client("kinesis").list_streams()["StreamNames"] == []
    assert call(live_server, "GET", "/pipelines/999999", admin).status == 404
