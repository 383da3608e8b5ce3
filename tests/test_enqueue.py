"""Work a transaction records is queued once it commits (console.celery.enqueue_on_commit); when
the broker cannot take it, the request still succeeds and what was not queued says so."""

from __future__ import annotations

import pytest
from celery import canvas
from kombu.exceptions import OperationalError

from pools.aws import pipelines
from pools.aws.models import AwsConnection, Pipeline
from pools.models import DataPool
from pools.tasks import warehouse_load_pool

pytestmark = pytest.mark.django_db


def _refuse(*args, **kwargs):
    raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


def test_a_pipeline_whose_chain_cannot_be_queued_fails_its_first_step(
    monkeypatch, django_capture_on_commit_callbacks
):
    published = []
    monkeypatch.setattr(canvas._chain, "apply_async", lambda self, **options: published.append(options))
    pool = DataPool.objects.create(name="orders_cdc")
    connection = AwsConnection.objects.create(name="sandbox")
    fields = {
        "table_name": "orders",
        "stream_name": "orders-cdc",
        "bucket_name": "b",
        "role_name": "r",
        "firehose_name": "f",
        "http_endpoint_name": "h",
        "endpoint_url": pool.endpoint_url(),
    }
    with django_capture_on_commit_callbacks(execute=True):
        queued = pipelines.create_pipeline(pool, connection, **fields)
    assert published == [{"retry": False}]  # queued after the commit, the publish not retried

    Pipeline.objects.filter(pk=queued.pk).update(status=Pipeline.Status.REMOVED)
    monkeypatch.setattr(canvas._chain, "apply_async", _refuse)
    with django_capture_on_commit_callbacks(execute=True):
        refused = pipelines.create_pipeline(pool, connection, **fields)
    refused.refresh_from_db()
    assert refused.status == Pipeline.Status.FAILED
    first, *rest = refused.phase_steps()
    assert first.state == "failed" and "Could not queue the work" in first.error and "refused" in first.error
    assert {s.state for s in rest} == {"pending"}


def test_a_load_that_cannot_be_queued_is_logged_not_raised(monkeypatch, caplog):
    monkeypatch.setattr(warehouse_load_pool, "apply_async", _refuse)
    assert warehouse_load_pool.enqueue(7) is False
    assert "could not enqueue pools.tasks.warehouse_load_pool(7)" in caplog.text


def test_a_replica_check_that_cannot_be_queued_is_failed_not_left_running(
    monkeypatch, django_capture_on_commit_callbacks
):
    from views_mv.models import MaterializedView, ReplicaCheck
    from views_mv.tasks import start_replica_check

    monkeypatch.setattr(canvas._chain, "apply_async", _refuse)
    source = DataPool.objects.create(name="orders_cdc")
    target = DataPool.objects.create(name="orders")
    mv = MaterializedView.objects.create(name="orders_mv", source_pool=source, target_pool=target)
    check = ReplicaCheck.objects.create(
        mv=mv, connection=AwsConnection.objects.create(name="sandbox"), table_name="orders"
    )
    with django_capture_on_commit_callbacks(execute=True):
        start_replica_check(check.pk)
    check.refresh_from_db()
    assert check.status == ReplicaCheck.Status.FAILED
    assert "could not queue" in check.report["error"]
