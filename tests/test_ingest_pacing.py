"""Pacing: past the soft backlog limit, a Firehose request waits a moment for the loader to make
room instead of being refused at once (every refused sender backs off for a second or more, all
together, and the loader then idles: bench/ingest.py's tail)."""

from __future__ import annotations

import threading
import time

import pytest

from pools import loader
from pools.ingest import landing, pacing
from tests.helpers.firehose import assert_firehose_reply, change_record, firehose_body, firehose_headers, post
from tests.helpers.pools import land_direct

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def behind(pool, settings, monkeypatch, no_worker):
    """A pool whose waiting deliveries are past the soft limit while a loader works (the test
    plays the loader: no_worker)."""
    monkeypatch.setattr(landing, "_worker_alive", lambda: True)
    monkeypatch.setattr(pacing, "_waiters", None)  # sized from this test's settings
    settings.INGEST_BACKLOG_SOFT_BYTES, settings.INGEST_BACKLOG_HARD_BYTES = 10_000, 1_000_000
    settings.INGEST_BACKLOG_WAIT, settings.INGEST_BACKLOG_WAITERS = 5.0, 2
    for b in range(4):
        land_direct(pool, [change_record(f"o{b}", taqueria="x" * 3000)])
    assert landing.pressure(pool).passing
    return pool


def send(server, pool):
    request_id, body = firehose_body([change_record("late")])
    started = time.monotonic()
    reply = post(server, pool, body, firehose_headers(request_id, pool.access_key))
    return request_id, reply, time.monotonic() - started


def test_a_request_past_the_soft_limit_is_taken_as_soon_as_the_loader_makes_room(endpoint_server, behind):
    def loader_claims() -> None:
        time.sleep(0.6)
        loader.claim(behind.pk)  # a loader takes what waits as its next batch

    helper = threading.Thread(target=loader_claims)
    helper.start()
    request_id, reply, took = send(endpoint_server, behind)
    helper.join()
    assert_firehose_reply(reply, request_id, 200)  # before pacing: 503 at once
    assert 0.5 < took < 3.0


def test_a_request_is_refused_after_the_wait_when_no_room_comes(endpoint_server, behind, settings):
    settings.INGEST_BACKLOG_WAIT = 0.4
    request_id, reply, took = send(endpoint_server, behind)
    doc = assert_firehose_reply(reply, request_id, 503)
    assert "loading this pool" in doc["errorMessage"]
    assert took >= 0.4


def test_waiting_requests_are_bounded_per_process(endpoint_server, behind):
    waiters = pacing._semaphore()
    assert waiters.acquire(blocking=False) and waiters.acquire(blocking=False)  # both taken
    try:
        request_id, reply, took = send(endpoint_server, behind)
    finally:
        waiters.release()
        waiters.release()
    assert_firehose_reply(reply, request_id, 503)
    assert took < 0.3  # refused at once: a thread stays free for deliveries and /healthz


def test_past_the_hard_limit_nothing_waits(endpoint_server, behind, settings):
    settings.INGEST_BACKLOG_HARD_BYTES = 10_000
    request_id, reply, took = send(endpoint_server, behind)
    doc = assert_firehose_reply(reply, request_id, 503)
    assert "behind" in doc["errorMessage"] and took < 0.3


def test_the_threads_left_for_deliveries_and_health_are_checked(settings):
    assert settings.WEB_QUERY_SLOTS + settings.INGEST_BACKLOG_WAITERS + 4 <= settings.WEB_THREADS
