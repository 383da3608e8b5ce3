"""The pure parts of the endpoint: envelope parsing and credentials."""

from __future__ import annotations

import base64
import gzip

import pytest

from pools.ingest import envelope


def test_it_parses_a_firehose_body():
    env = envelope.parse(
        b'{"requestId":"r1","timestamp":1719347891599,"records":[{"data":""},{"data":"e30="}]}',
        header_request_id="r1",
    )
    assert env == envelope.Envelope(request_id="r1", timestamp=1719347891599, record_count=2)


def test_it_takes_the_request_id_from_the_header_when_the_body_has_none():
    env = envelope.parse(b'{"records":[{"data":"e30="}]}', header_request_id="from-header")
    assert env.request_id == "from-header" and env.timestamp is None


def test_it_tolerates_a_string_timestamp():
    # AWS's own failure example writes the timestamp as a string.
    assert (
        envelope.parse(b'{"requestId":"r","timestamp":"1","records":[{}]}', header_request_id="").timestamp
        is None
    )


@pytest.mark.parametrize("body", [b"", b"null", b'{"records":[{}]}', b'{"requestId":5,"records":[{}]}'])
def test_it_refuses_a_body_without_a_usable_request_id(body):
    with pytest.raises(envelope.EnvelopeError) as exc:
        envelope.parse(body, header_request_id="")
    assert exc.value.status == 400


def test_it_inflates_gzip_within_the_limit():
    data = b'{"x":"' + b"a" * 10_000 + b'"}'
    assert envelope.decompress(gzip.compress(data), "gzip", max_bytes=20_000) == data
    with pytest.raises(envelope.EnvelopeError, match="exceeds"):
        envelope.decompress(gzip.compress(data), "gzip", max_bytes=5_000)
    with pytest.raises(envelope.EnvelopeError, match="truncated"):
        envelope.decompress(gzip.compress(data)[:-10], "gzip", max_bytes=20_000)
    with pytest.raises(envelope.EnvelopeError, match="unsupported"):
        envelope.decompress(data, "br", max_bytes=20_000)


def test_it_reads_basic_credentials():
    token = base64.b64encode(b"user:pa:ss").decode()
    assert envelope.basic_credentials(f"Basic {token}") == ("user", "pa:ss")
    assert envelope.basic_credentials(f"Bearer {token}") is None
    assert envelope.basic_credentials("Basic !!!") is None
    assert envelope.decode_user_password(base64.b64encode(b"no-colon").decode()) is None


# Bodies that Python's json module reads but ClickHouse's parser does not (or reads differently).
DISPUTED = {
    "NaN": b'{"requestId":"r","records":[{"data":"YQ=="}],"timestamp":NaN}',
    "Infinity": b'{"requestId":"r","records":[{"data":"YQ=="}],"t":-Infinity}',
    "overflowing number": b'{"requestId":"r","records":[{"data":"YQ=="}],"t":1e400}',
    "duplicate records": b'{"requestId":"r","records":[{"data":"YQ=="}],"records":[{},{}]}',
    "duplicate escaped key": b'{"requestId":"r","records":[{"data":"YQ==","d\\u0061ta":"x"}]}',
    "lone high surrogate": b'{"requestId":"r\\ud800","records":[{"data":"YQ=="}]}',
    "lone low surrogate": b'{"requestId":"r","records":[{"data":"YQ==","x":"\\udc00"}]}',
    "UTF-16": '{"requestId":"r","records":[{"data":"YQ=="}]}'.encode("utf-16"),
    "too deep": b'{"requestId":"r","records":[{"data":"YQ=="}],"x":' + b"[" * 3000 + b"]" * 3000 + b"}",
}


@pytest.mark.parametrize("name", DISPUTED)
def test_it_refuses_what_the_warehouse_would_read_differently(name):
    with pytest.raises(envelope.EnvelopeError) as exc:
        envelope.parse(DISPUTED[name], header_request_id="")
    assert exc.value.status == 400


def test_it_accepts_what_both_read_alike():
    body = b'\xef\xbb\xbf{"requestId":"r\\ud83d\\ude00","records":[{"data":"YQ=="},{"data":1.5}],"t":-0.0}'
    env = envelope.parse(body, header_request_id="")
    assert (env.request_id, env.record_count) == ("r\U0001f600", 2)
