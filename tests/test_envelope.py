"""The pure parts of the endpoint: envelope parsing and credentials."""

from __future__ import annotations

import base64
import gzip

import pytest

from pools import envelope


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
