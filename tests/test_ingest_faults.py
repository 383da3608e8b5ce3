"""Faults on the ingest URL, injected for real: every one is answered with Firehose's JSON reply,
400 when the request is at fault and 503 when Shoal is, and nothing half-written is left behind."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from django.db import connection

from pools.ingest import journal
from pools.models import DataPool, Delivery
from tests.helpers.firehose import (
    assert_firehose_reply,
    change_record,
    endpoint,
    firehose_body,
    firehose_headers,
)
from tests.helpers.servers import http

pytestmark = pytest.mark.django_db(transaction=True)


def test_deeply_nested_json_is_the_request_s_fault(live_server, pool):
    url = endpoint(live_server, pool)
    for body, extra in [
        (b"[" * 100_000, {}),
        (b'{"requestId": "r-deep", "records": ' + b"[" * 100_000, {}),
        (gzip.compress(b"{" + b'"a":{' * 100_000), {"Content-Encoding": "gzip"}),
    ]:
        reply = http("POST", url, body, firehose_headers("r-deep", pool.access_key, **extra))
        doc = assert_firehose_reply(reply, "r-deep", 400)
        assert "nest" in doc["errorMessage"]
    assert not Delivery.objects.exists()


def test_a_database_error_is_shoal_s_fault(live_server, pool, no_worker):
    request_id, body = firehose_body([change_record("o1")])
    with connection.cursor() as cursor:  # the table the delivery goes to is gone for a moment
        cursor.execute("ALTER TABLE pools_delivery RENAME TO pools_delivery_away")
    try:
        reply = http("POST", endpoint(live_server, pool), body, firehose_headers(request_id, pool.access_key))
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE pools_delivery_away RENAME TO pools_delivery")
    doc = assert_firehose_reply(reply, request_id, 503)
    assert "retry" in doc["errorMessage"]
    assert not list(journal.folder().glob(f"{pool.public_id}/*"))  # the journal file was discarded
    # Firehose retries, and the retry is stored.
    reply = http("POST", endpoint(live_server, pool), body, firehose_headers(request_id, pool.access_key))
    assert_firehose_reply(reply, request_id, 200)
    assert Delivery.objects.filter(pool=pool).count() == 1


def test_the_endpoint_is_public_under_a_default_deny_login_middleware(client, pool, settings):
    # The test client loads the middleware at its first request, so the setting applies.
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.contrib.auth.middleware.LoginRequiredMiddleware"]
    request_id, body = firehose_body([change_record("o1")])
    reply = client.post(
        pool.endpoint_path(),
        body,
        content_type="application/json",
        headers=firehose_headers(request_id, pool.access_key),
    )
    assert reply.status_code == 200, reply.content
    assert reply.json()["requestId"] == request_id


def test_a_wrong_host_header_still_gets_the_json_reply(live_server, pool):
    request_id, body = firehose_body([change_record("o1")])
    headers = firehose_headers(request_id, pool.access_key, Host="not-allowed.example")
    reply = http("POST", endpoint(live_server, pool), body, headers)
    assert_firehose_reply(reply, request_id, 400)


# --- a small, real filesystem for the data folder ----------------------------------------------


@pytest.fixture
def small_disk(settings):
    """A 4 MiB tmpfs mounted as the data folder's landing place (the test runs as root)."""
    if settings.INGEST_LANDING != "files" or not settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        pytest.skip("deliveries wait in the data folder only with INGEST_LANDING=files (one host)")
    mount = Path(settings.DATA_DIR) / f"small-disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        mount.rmdir()
        pytest.fail(f"cannot mount a small tmpfs (the tests run as root): {exc}")
    settings.DATA_DIR = mount
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
        mount.rmdir()


def _fill(mount: Path, leave: int) -> Path:
    """Fill the filesystem until `leave` bytes are free."""
    filler = mount / "filler"
    free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave))
    return filler


def test_a_full_disk_is_shoal_s_fault_and_leaves_no_temp_file(live_server, pool, small_disk, settings):
    settings.INGEST_MIN_FREE_BYTES = 0  # no back-pressure: let the write itself fail
    filler = _fill(small_disk, leave=16 * 1024)
    request_id, body = firehose_body([change_record(f"o{i}", taqueria="x" * 500) for i in range(100)])
    assert len(body) > 64 * 1024
    reply = http("POST", endpoint(live_server, pool), body, firehose_headers(request_id, pool.access_key))
    doc = assert_firehose_reply(reply, request_id, 503)
    assert "retry" in doc["errorMessage"]
    assert [p for p in small_disk.rglob("*") if p.is_file() and p != filler] == []
    assert not Delivery.objects.exists()
    # Space comes back, Firehose retries: stored.
    filler.unlink()
    reply = http("POST", endpoint(live_server, pool), body, firehose_headers(request_id, pool.access_key))
    assert_firehose_reply(reply, request_id, 200)
    assert journal.path_of(Delivery.objects.get(pool=pool).body_path).read_bytes() == body


def test_it_answers_503_before_the_disk_fills(live_server, pool, small_disk, settings):
    settings.INGEST_MIN_FREE_BYTES = 2 * 1024 * 1024
    filler = _fill(small_disk, leave=2 * 1024 * 1024 + 64 * 1024)
    request_id, body = firehose_body([change_record(f"o{i}", taqueria="x" * 500) for i in range(200)])
    assert len(body) > 64 * 1024  # this one would take free space below the minimum
    reply = http("POST", endpoint(live_server, pool), body, firehose_headers(request_id, pool.access_key))
    doc = assert_firehose_reply(reply, request_id, 503)
    assert "disk" in doc["errorMessage"]
    assert [p for p in small_disk.rglob("*") if p.is_file() and p != filler] == []
    small_id, small_body = firehose_body([change_record("o1")])  # a small one still fits
    reply = http("POST", endpoint(live_server, pool), small_body, firehose_headers(small_id, pool.access_key))
    assert_firehose_reply(reply, small_id, 200)
    filler.unlink()
    reply = http("POST", endpoint(live_server, pool), body, firehose_headers(request_id, pool.access_key))
    assert_firehose_reply(reply, request_id, 200)


# --- the real web server (gunicorn, as `make run` starts it) ------------------------------------


def test_oversized_headers_get_the_json_reply_from_the_real_server(web_server, pool):
    url = web_server + pool.endpoint_path()
    request_id, body = firehose_body([change_record("o1")])
    # A 100 KB request id: the request's fault, answered in JSON.
    long_id = "r" * 100_000
    reply = http("POST", url, body, firehose_headers(long_id, pool.access_key))
    assert 400 <= reply.status < 500, reply.body[:300]
    assert reply.headers["Content-Type"] == "application/json"
    doc = reply.json()
    assert doc["errorMessage"] and isinstance(doc["timestamp"], int)
    # Headers beyond what even gunicorn reads: still JSON, still a 4xx.
    reply = http("POST", url, body, firehose_headers(request_id, pool.access_key, **{"X-Big": "b" * 300_000}))
    assert 400 <= reply.status < 500 and reply.headers["Content-Type"] == "application/json"
    assert reply.json()["errorMessage"]
    # And an ordinary delivery on the same server is stored.
    reply = http("POST", url, body, firehose_headers(request_id, pool.access_key))
    assert_firehose_reply(reply, request_id, 200)


def _post_all_then_read(url: str, body: bytes, headers: dict, chunked: bool = False):
    """POST as Firehose's sender does: the whole body first, then the answer; a server that
    answers and closes before reading the body makes this sender see a broken pipe instead."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        if chunked:
            conn.putrequest("POST", parts.path)
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for start in range(0, len(body), 65536):
                piece = body[start : start + 65536]
                conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            conn.send(b"0\r\n\r\n")
        else:
            conn.request("POST", parts.path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        conn.close()


def test_a_refusal_is_answered_after_the_body_is_read_so_the_sender_gets_the_json(web_server, pool):
    # A pool being deleted answers 503 at once; with a body of 32 MiB on its way, an answer sent
    # before the body is read reaches the sender as a broken pipe, not as Firehose's JSON.
    DataPool.objects.filter(pk=pool.pk).update(status=DataPool.Status.DELETING)
    request_id, body = firehose_body([change_record(f"o{i}", taqueria="x" * 3000) for i in range(8000)])
    assert len(body) > 32 * 1024 * 1024
    for keep in ("keep-alive", "close", "close"):
        status, content_type, reply = _post_all_then_read(
            web_server + pool.endpoint_path(),
            body,
            firehose_headers(request_id, pool.access_key, Connection=keep),
        )
        assert (status, content_type) == (503, "application/json")
        assert json.loads(reply)["requestId"] == request_id


def test_a_chunked_body_is_read_within_the_limit(web_server, pool):
    # Firehose sends Content-Length; another sender may stream its body chunked instead.
    request_id, body = firehose_body([change_record("o1"), change_record("o2")])
    status, content_type, reply = _post_all_then_read(
        web_server + pool.endpoint_path(), body, firehose_headers(request_id, pool.access_key), chunked=True
    )
    assert (status, content_type) == (200, "application/json"), reply
    assert Delivery.objects.get(pool=pool, request_id=request_id).record_count == 2
