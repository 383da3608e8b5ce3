"""The Firehose HTTP endpoint, through real HTTP: every status the protocol defines, the reply
shape on every path, authentication, gzip, retries, large batches and quarantine."""

from __future__ import annotations

import base64
import gzip
import json

import pytest
from django.db import OperationalError

from pools.ingest import journal
from pools.models import DataPool, Delivery, QuarantinedRecord
from tests.helpers.firehose import (
    assert_firehose_reply,
    call,
    change_record,
    endpoint,
    firehose_body,
    firehose_headers,
    post,
)
from tests.helpers.servers import http
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("landing_mode", ["files", "database"])
def test_it_lands_a_delivery_and_answers_200(live_server, pool, settings, landing_mode, no_worker):
    settings.INGEST_LANDING = landing_mode
    request_id, body = firehose_body([change_record("o1"), change_record("o2")])
    reply = http("POST", endpoint(live_server, pool), body, firehose_headers(request_id, pool.access_key))
    assert_firehose_reply(reply, request_id, 200)
    delivery = Delivery.objects.get(pool=pool)
    assert delivery.request_id == request_id
    assert delivery.record_count == 2
    # Durable before the 200: in the fsync'ed journal, or in the database row.
    if landing_mode == "files":
        assert journal.path_of(delivery.body_path).read_bytes() == body
        assert bytes(delivery.body) == b""
    else:
        assert bytes(delivery.body) == body and delivery.body_path == ""


def test_it_stores_a_retried_request_once(endpoint_server, pool):
    request_id, body = firehose_body([change_record("o1")])
    for _ in range(3):
        reply = call(
            endpoint_server, "POST", pool.endpoint_path(), body, firehose_headers(request_id, pool.access_key)
        )
        assert_firehose_reply(reply, request_id, 200)
    assert Delivery.objects.filter(pool=pool).count() == 1
    if journal.uses_files():
        # The retries' journal files were discarded: at most the stored delivery's file is left
        # (the warehouse worker may have loaded it and removed that one too).
        assert len(list((journal.folder() / pool.public_id).iterdir())) <= 1


@pytest.mark.parametrize("key", [None, "", "wrong-key"])
def test_it_refuses_a_missing_or_wrong_access_key_with_401(endpoint_server, pool, key):
    request_id, body = firehose_body([change_record("o1")])
    reply = post(endpoint_server, pool, body, firehose_headers(request_id, key))
    doc = assert_firehose_reply(reply, request_id, 401)
    assert "Access-Key" in doc["errorMessage"]
    assert not Delivery.objects.exists()


def test_it_accepts_http_basic_with_the_pool_user_and_password(endpoint_server, pool):
    request_id, body = firehose_body([change_record("o1")])
    token = base64.b64encode(b"firehose:s3cret-pass").decode()
    headers = firehose_headers(request_id, None, Authorization=f"Basic {token}")
    assert_firehose_reply(post(endpoint_server, pool, body, headers), request_id, 200)

    bad = base64.b64encode(b"firehose:wrong").decode()
    headers = firehose_headers("r-2", None, Authorization=f"Basic {bad}")
    _, body2 = firehose_body([change_record("o1")], "r-2")
    assert_firehose_reply(post(endpoint_server, pool, body2, headers), "r-2", 401)


def test_it_accepts_basic_credentials_carried_in_the_access_key_header(endpoint_server, pool):
    # Firehose can only send X-Amz-Firehose-Access-Key, so the Basic pair may travel there.
    request_id, body = firehose_body([change_record("o1")])
    token = base64.b64encode(b"firehose:s3cret-pass").decode()
    reply = post(endpoint_server, pool, body, firehose_headers(request_id, token))
    assert_firehose_reply(reply, request_id, 200)


def test_it_answers_404_for_an_unknown_pool(endpoint_server, pool):
    request_id, body = firehose_body([change_record("o1")])
    url = "/ingest/firehose/" + "0" * 32
    assert_firehose_reply(
        call(endpoint_server, "POST", url, body, firehose_headers(request_id, pool.access_key)),
        request_id,
        404,
    )


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_it_answers_405_for_other_methods(endpoint_server, pool, method):
    reply = call(
        endpoint_server,
        method,
        pool.endpoint_path(),
        b"" if method != "GET" else None,
        firehose_headers("r-405", pool.access_key),
    )
    assert_firehose_reply(reply, "r-405", 405)
    assert reply.headers["Allow"] == "POST"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"[]", "JSON object"),
        (b'{"requestId": "r-400", "timestamp": 1}', "records must be an array"),
        (b'{"requestId": "r-400", "records": []}', "records is empty"),
        (b'{"requestId": "other", "records": [{"data": ""}]}', "does not match"),
        # What the warehouse would read differently from Python: refused, not half-stored.
        (b'{"requestId": "r-400", "records": [{"data": ""}], "timestamp": NaN}', "NaN"),
        (b'{"requestId": "r-400", "records": [{"data": ""}], "records": [{}, {}]}', "duplicate key"),
        (b'{"requestId": "r-400", "records": [{"data": "", "x": "\\ud800"}]}', "surrogate"),
        (b'{"requestId": "r-400", "records": [{}], "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", "deep"),
    ],
)
def test_it_answers_400_for_a_malformed_envelope(endpoint_server, pool, body, message):
    reply = call(
        endpoint_server, "POST", pool.endpoint_path(), body, firehose_headers("r-400", pool.access_key)
    )
    doc = assert_firehose_reply(reply, "r-400", 400)
    assert message in doc["errorMessage"]
    assert not Delivery.objects.exists()


def test_it_accepts_gzip_bodies(endpoint_server, pool, no_worker):
    # No worker: a running one could load the delivery and remove its journal file before it is read.
    request_id, body = firehose_body([change_record("o1"), change_record("o2")])
    headers = firehose_headers(request_id, pool.access_key, **{"Content-Encoding": "gzip"})
    compressed = gzip.compress(body)
    reply = post(endpoint_server, pool, compressed, headers)
    assert_firehose_reply(reply, request_id, 200)
    delivery = Delivery.objects.get(pool=pool)
    assert delivery.body_bytes == len(compressed)
    # Until the worker loads it (then the journal file and the body are gone): the journal holds
    # the inflated body, the database row the body as received.
    if delivery.status == Delivery.Status.LOADED:
        pass
    elif journal.uses_files():
        try:
            assert journal.path_of(delivery.body_path).read_bytes() == body
        except FileNotFoundError:  # loaded in the meantime
            delivery.refresh_from_db()
            assert delivery.status == Delivery.Status.LOADED
    else:
        assert bytes(delivery.body) == compressed and delivery.content_encoding == "gzip"

    headers = firehose_headers("r-badgz", pool.access_key, **{"Content-Encoding": "gzip"})
    reply = post(endpoint_server, pool, b"\x1f\x8b not gzip", headers)
    assert_firehose_reply(reply, "r-badgz", 400)


def test_it_never_answers_413_for_a_batch_firehose_can_send(endpoint_server, pool):
    # 12,000 records and ~9 MiB: larger than Django's default upload limit, well within Firehose's.
    records = [change_record(f"o{i}", taqueria="x" * 400) for i in range(12_000)]
    request_id, body = firehose_body(records)
    assert len(body) > 8 * 1024 * 1024
    reply = call(
        endpoint_server, "POST", pool.endpoint_path(), body, firehose_headers(request_id, pool.access_key)
    )
    assert_firehose_reply(reply, request_id, 200)
    assert Delivery.objects.get(pool=pool).record_count == 12_000


def test_it_answers_503_when_it_cannot_store(endpoint_server, pool, monkeypatch):
    # The database refusing the write (disk full, locked, failover) must not be acknowledged.
    def refuse(*args, **kwargs):
        raise OperationalError("database or disk is full")

    monkeypatch.setattr(Delivery.objects, "create", refuse)
    request_id, body = firehose_body([change_record("o1")])
    reply = call(
        endpoint_server, "POST", pool.endpoint_path(), body, firehose_headers(request_id, pool.access_key)
    )
    doc = assert_firehose_reply(reply, request_id, 503)
    assert "retry" in doc["errorMessage"]


def test_it_answers_503_while_the_pool_is_being_deleted(endpoint_server, pool):
    DataPool.objects.filter(pk=pool.pk).update(status=DataPool.Status.DELETING)
    request_id, body = firehose_body([change_record("o1")])
    reply = call(
        endpoint_server, "POST", pool.endpoint_path(), body, firehose_headers(request_id, pool.access_key)
    )
    assert_firehose_reply(reply, request_id, 503)


def test_it_loads_good_records_and_quarantines_the_rest(endpoint_server, pool, warehouse_worker):
    from console import warehouse_client
    from console.tasks import run_sql

    not_a_change = json.dumps({"hello": "world"}).encode()
    request_id, body = firehose_body([change_record("o1"), b"{not json", not_a_change, change_record("o2")])
    doc = json.loads(body)
    doc["records"].append({"data": "%%% not base64 %%%"})
    body = json.dumps(doc).encode()
    reply = call(
        endpoint_server, "POST", pool.endpoint_path(), body, firehose_headers(request_id, pool.access_key)
    )
    assert_firehose_reply(reply, request_id, 200)

    delivery = wait_for(
        lambda: Delivery.objects.filter(pool=pool, status=Delivery.Status.LOADED).first(), message="load"
    )
    assert (delivery.loaded_count, delivery.quarantined_count) == (2, 3)
    reasons = dict(QuarantinedRecord.objects.filter(pool=pool).values_list("position", "reason"))
    assert reasons == {
        1: "record is not JSON",
        2: "eventName is missing or not INSERT, MODIFY or REMOVE",
        4: "data is not valid base64",
    }
    result = warehouse_client.call(run_sql, f"SELECT keys.order_id.S FROM {pool.name} ORDER BY 1")
    assert result["rows"] == [["o1"], ["o2"]]
    pool.refresh_from_db()
    assert (pool.status, pool.record_count, pool.quarantined_count) == ("live", 2, 3)
    assert pool.last_delivery_at is not None


@pytest.fixture
def fresh_worker_check(monkeypatch):
    from pools.ingest import landing

    monkeypatch.setattr(landing, "_worker_seen", {"at": 0.0, "alive": False})


def test_it_pushes_back_while_the_warehouse_is_behind(
    endpoint_server, pool, settings, fresh_worker_check, no_worker
):
    import redis

    from console.warehouse_client import HEARTBEAT_KEY

    settings.INGEST_BACKLOG_SOFT_BYTES = 1000
    settings.INGEST_BACKLOG_WAIT = 0.3  # the wait for room (tests/test_ingest_pacing.py) runs out
    first_id, first = firehose_body([change_record("o1", taqueria="x" * 2000)])
    headers = firehose_headers(first_id, pool.access_key)
    assert_firehose_reply(post(endpoint_server, pool, first, headers), first_id, 200)

    # No warehouse worker beats: keep landing rather than let Firehose give up into S3.
    second_id, second = firehose_body([change_record("o2")])
    reply = call(
        endpoint_server, "POST", pool.endpoint_path(), second, firehose_headers(second_id, pool.access_key)
    )
    assert_firehose_reply(reply, second_id, 200)

    # A worker is loading: the pool is behind, so Firehose is asked to retry.
    redis.Redis.from_url(settings.REDIS_URL).set(HEARTBEAT_KEY, "test", ex=5)
    from pools.ingest import landing

    landing._worker_seen["at"] = 0.0
    third_id, third = firehose_body([change_record("o3")])
    reply = call(
        endpoint_server, "POST", pool.endpoint_path(), third, firehose_headers(third_id, pool.access_key)
    )
    assert "retry" in assert_firehose_reply(reply, third_id, 503)["errorMessage"]
    redis.Redis.from_url(settings.REDIS_URL).delete(HEARTBEAT_KEY)

    # The hard limit holds whatever the workers do.
    settings.INGEST_BACKLOG_HARD_BYTES = 2000
    landing._worker_seen["at"] = 0.0
    reply = call(
        endpoint_server, "POST", pool.endpoint_path(), third, firehose_headers(third_id, pool.access_key)
    )
    assert_firehose_reply(reply, third_id, 503)
    assert Delivery.objects.filter(pool=pool).count() == 2
