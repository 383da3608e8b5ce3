"""The Firehose endpoint's credentials: the same work for every wrong Basic credential (no
user-name timing oracle), failures throttled per pool and client address, and the pool's access
key (256 random bits, checked with one SHA-256) never refused for it."""

from __future__ import annotations

import base64

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.test import Client

from pools.models import DataPool
from tests.helpers.firehose import change_record, firehose_body


def _post(pool: DataPool, *, key: str | None = None, basic: str | None = None, address: str = "203.0.113.7"):
    request_id, body = firehose_body([change_record("o1")])
    headers = {"HTTP_X_AMZ_FIREHOSE_REQUEST_ID": request_id, "REMOTE_ADDR": address}
    if key is not None:
        headers["HTTP_X_AMZ_FIREHOSE_ACCESS_KEY"] = key
    if basic is not None:
        headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(basic.encode()).decode()
    return Client().post(pool.endpoint_path(), body, content_type="application/json", **headers)


@pytest.fixture
def verifications(monkeypatch):
    """How many password hashes were checked (the tests' hasher is MD5: count, don't time)."""
    calls = []
    original = MD5PasswordHasher.verify

    def verify(self, password, encoded):
        calls.append(encoded)
        return original(self, password, encoded)

    monkeypatch.setattr(MD5PasswordHasher, "verify", verify)
    return calls


@pytest.mark.parametrize(
    "credentials",
    ["firehose:wrong-password", "someone:wrong-password", "someone:s3cret-pass", ":x"],
    ids=["right user", "wrong user", "wrong user, right password", "no user"],
)
def test_every_wrong_basic_credential_costs_one_password_check(pool, verifications, credentials):
    assert _post(pool, basic=credentials).status_code == 401
    assert len(verifications) == 1
    assert _post(pool, key=base64.b64encode(credentials.encode()).decode()).status_code == 401
    assert len(verifications) == 2


def test_a_pool_without_basic_credentials_does_the_same_work(transactional_db, verifications):
    from pools.services import create_pool

    plain = create_pool("no_basic_auth")
    assert _post(plain, basic="firehose:anything").status_code == 401
    assert len(verifications) == 1


def test_failures_are_throttled_per_pool_and_address_but_the_access_key_always_passes(pool, settings):
    settings.INGEST_AUTH_FAILURE_LIMIT = 5
    for _ in range(5):
        assert _post(pool, basic="firehose:guess").status_code == 401
    throttled = _post(pool, basic="firehose:guess")
    assert throttled.status_code == 429 and "too many" in throttled.json()["errorMessage"]
    # The right password from the guessing address waits too: a guess must not be told apart.
    assert _post(pool, basic="firehose:s3cret-pass").status_code == 429
    # Firehose's access key is never refused, and other addresses are not held back.
    assert _post(pool, key=pool.access_key).status_code == 200
    assert _post(pool, basic="firehose:s3cret-pass", address="198.51.100.9").status_code == 200
    # Nor is the same address on another pool.
    from pools.services import create_pool

    other = create_pool("other_pool_auth", basic_auth_user="firehose", basic_auth_password="s3cret-pass")
    assert _post(other, basic="firehose:s3cret-pass").status_code == 200


def test_wrong_access_keys_count_as_failures_too(pool, settings):
    settings.INGEST_AUTH_FAILURE_LIMIT = 3
    for _ in range(3):
        assert _post(pool, key="not-the-key").status_code == 401
    assert _post(pool, basic="firehose:s3cret-pass").status_code == 429
    assert _post(pool, key=pool.access_key).status_code == 200
