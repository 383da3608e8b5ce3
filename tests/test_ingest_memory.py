"""A Firehose body's memory cost is bounded by its size, and large bodies in flight are bounded in
number (issue 18): a 64 MiB body of `{}` records used to take 1.9 GiB in a web worker."""

from __future__ import annotations

import threading
import tracemalloc

import pytest

from pools.ingest import envelope, inflight
from tests.helpers.firehose import assert_firehose_reply, change_record, firehose_body, firehose_headers, post


def test_a_body_of_empty_records_costs_a_few_times_its_size():
    records = 2_000_000
    body = b'{"requestId":"r","timestamp":1,"records":[' + b",".join([b"{}"] * records) + b"]}"
    tracemalloc.start()
    try:
        parsed = envelope.parse(body, header_request_id="r")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert parsed.record_count == records
    # Its text (one byte a character here) and one pointer a record; as dicts it was ~30 times.
    assert peak < 5 * len(body), peak / len(body)


def test_duplicate_keys_and_lone_surrogates_inside_records_are_still_refused():
    for record in (b'{"data":"a","data":"b"}', b'{"data":"\\ud800"}', b'{"data":"x","more":["\\udc00"]}'):
        body = b'{"requestId":"r","records":[' + record + b"]}"
        with pytest.raises(envelope.EnvelopeError):
            envelope.parse(body, header_request_id="r")
    paired = b'{"requestId":"r","records":[{"data":"\\ud83d\\ude00"}]}'
    assert envelope.parse(paired, header_request_id="r").record_count == 1


@pytest.mark.django_db(transaction=True)
def test_large_bodies_wait_for_a_permit_then_get_503_and_come_again(endpoint_server, pool, settings):
    settings.INGEST_LARGE_BODY_BYTES = 1024
    settings.INGEST_LARGE_BODY_WAIT = 0.2
    inflight._permits = threading.BoundedSemaphore(1)  # one large body at a time in this process
    request_id, body = firehose_body([change_record(f"o{i}") for i in range(20)])
    assert len(body) > 1024
    headers = firehose_headers(request_id, pool.access_key)
    try:
        with inflight.permit(None):  # another large body is being received
            reply = post(endpoint_server, pool, body, headers)
            doc = assert_firehose_reply(reply, request_id, 503)
            assert "large bodies" in doc["errorMessage"]
        # Firehose sends it again: now it lands.
        assert_firehose_reply(post(endpoint_server, pool, body, headers), request_id, 200)
        # A small body never waits for a permit.
        small_id, small = firehose_body([change_record("small")])
        settings.INGEST_LARGE_BODY_BYTES = len(small)
        with inflight.permit(None):
            reply = post(endpoint_server, pool, small, firehose_headers(small_id, pool.access_key))
            assert_firehose_reply(reply, small_id, 200)
    finally:
        inflight._permits = None
