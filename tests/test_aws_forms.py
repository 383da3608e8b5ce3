"""The forms enforce AWS's limits themselves: botocore checks only minimums."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from pools.aws import forms
from pools.aws.models import delivery_url_problem

GOOD = {
    "firehose_name": "orders-to-shoal",
    "http_endpoint_name": "Shoal orders",
    "endpoint_url": "https://shoal.example.com/ingest/firehose/abc",
    "retry_duration_s": 7200,
    "content_encoding": "NONE",
    "buffer_size_mib": 1,
    "buffer_interval_s": 60,
    "bucket_mode": "new",
    "new_bucket": "shoal-failed-orders-1a2b3c4d",
    "role_name": "shoal-firehose-orders-to-shoal",
}


def errors_of(overrides: dict, **kwargs) -> dict:
    form = forms.FirehoseForm({**GOOD, **overrides}, **kwargs)
    form.is_valid()
    return form.errors


def test_the_guides_settings_pass():
    assert errors_of({}) == {}


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        ("buffer_size_mib", 0, False),
        ("buffer_size_mib", 1, True),
        ("buffer_size_mib", 64, True),
        ("buffer_size_mib", 65, False),
        ("buffer_interval_s", -1, False),
        ("buffer_interval_s", 0, True),
        ("buffer_interval_s", 900, True),
        ("buffer_interval_s", 901, False),
        ("retry_duration_s", 0, True),
        ("retry_duration_s", 7200, True),
        ("retry_duration_s", 7201, False),
        ("firehose_name", "a" * 64, True),
        ("firehose_name", "a" * 65, False),
        ("firehose_name", "orders to shoal", False),
        ("firehose_name", "orders/shoal", False),
        ("role_name", "shoal+firehose=,.@_-1", True),
        ("role_name", "r" * 65, False),
        ("role_name", "shoal firehose", False),
        ("role_name", "shoál", False),
        ("http_endpoint_name", "   ", False),
        ("http_endpoint_name", "x" * 257, False),
        ("content_encoding", "BROTLI", False),
        ("content_encoding", "GZIP", True),
    ],
)
def test_firehose_limits(field, value, ok):
    assert (field not in errors_of({field: value})) is ok


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://shoal.example.com/ingest/firehose/abc", ""),
        ("https://shoal.example.com:443/ingest/firehose/abc", ""),
        ("http://shoal.example.com/ingest/firehose/abc", "https://"),
        ("https://shoal.example.com:8443/ingest/firehose/abc", "port 443"),
        ("https://shoal.example.com/" + "x" * 1000, "1000 characters"),
        ("shoal.example.com/ingest", "http(s) URL"),
    ],
)
def test_the_endpoint_url_must_be_https_on_443(url, problem):
    found = errors_of({"endpoint_url": url}).get("endpoint_url", [""])[0]
    assert (problem in found) if problem else not found


def test_an_emulator_accepts_plain_http_but_the_warning_stays():
    assert errors_of({"endpoint_url": "http://127.0.0.1:8000/ingest/firehose/abc"}, emulator=True) == {}
    assert "https://" in delivery_url_problem("http://127.0.0.1:8000")
    assert "port 443" in delivery_url_problem("https://shoal.example.com:8443")
    assert delivery_url_problem("https://shoal.example.com") == ""


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("shoal-failed-orders-1a2b3c4d", True),
        ("my.bucket.name", True),
        ("abc", True),
        ("ab", False),
        ("a" * 64, False),
        ("Shoal-Failed", False),
        ("shoal_failed", False),
        ("-shoal", False),
        ("shoal-", False),
        ("shoal..failed", False),
        ("shoal.-failed", False),
        ("192.168.5.4", False),
        ("xn--shoal", False),
        ("sthree-shoal", False),
        ("shoal-s3alias", False),
        ("shoal--ol-s3", False),
    ],
)
def test_bucket_names_follow_s3_rules(name, ok):
    try:
        forms.validate_bucket_name(name)
    except ValidationError:
        assert not ok
    else:
        assert ok
    assert ("new_bucket" not in errors_of({"new_bucket": name})) is ok


def test_an_existing_bucket_or_stream_must_be_one_listed():
    found = errors_of({"bucket_mode": "existing", "existing_bucket": "nope"}, buckets=["mine"])
    assert "existing_bucket" in found
    assert errors_of({"bucket_mode": "existing", "existing_bucket": "mine"}, buckets=["mine"]) == {}
    assert "new_bucket" in errors_of({"new_bucket": "mine"}, buckets=["mine"])  # exists: choose it

    def stream_errors(data, streams=()):
        form = forms.StreamForm(data, streams=list(streams))
        form.is_valid()
        return form.errors

    assert stream_errors({"mode": "new", "new_name": "orders-cdc"}) == {}
    assert "new_name" in stream_errors({"mode": "new", "new_name": "orders cdc"})
    assert "new_name" in stream_errors({"mode": "new", "new_name": "s" * 129})
    assert stream_errors({"mode": "new", "new_name": "s" * 128}) == {}
    assert "new_name" in stream_errors({"mode": "new", "new_name": "orders-cdc"}, ["orders-cdc"])
    assert "existing_name" in stream_errors({"mode": "existing", "existing_name": "x"}, ["orders-cdc"])
    assert stream_errors({"mode": "existing", "existing_name": "orders-cdc"}, ["orders-cdc"]) == {}


def test_default_names_fit_the_patterns():
    bucket = forms.default_bucket_name("Orders_Table.2024")
    forms.validate_bucket_name(bucket)
    forms.FIREHOSE_NAME(forms.clean_name("my table!" * 10 + "-to-shoal", limit=64))
    forms.ROLE_NAME(forms.clean_name("shoal-firehose-" + "x" * 80, limit=64))
