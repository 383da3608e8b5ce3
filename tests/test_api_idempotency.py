"""Idempotency-Key keeps the first answer of a create for a day in Redis: never a secret in it."""

from __future__ import annotations

import hashlib
import json
import uuid

from django.test import Client

from console.access.api import channel, keys
from pools.models import DataPool

PASSWORD = "correct horse battery staple"


IDEMPOTENCY_KEY = f"create-orders-{uuid.uuid4()}"


def _create(client: Client, key: str, name: str):
    body = {"name": name, "basic_auth_user": "firehose", "basic_auth_password": PASSWORD}
    return client.post(
        "/api/v1/pools",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
        HTTP_IDEMPOTENCY_KEY=IDEMPOTENCY_KEY,
    )


def _cached() -> bytes:
    r = channel.client()
    return b"".join(r.get(name) or b"" for name in r.scan_iter("shoal:api:idempotency:*"))


def test_it_caches_the_create_answer_without_the_access_key_or_the_password(transactional_db):
    admin_key = keys.create_key("root", "manage", role="admin").key
    client = Client()
    first = _create(client, admin_key, "idem_secret")
    assert first.status_code == 201, first.content
    access_key = first.json()["access_key"]
    assert access_key and access_key == DataPool.objects.get(name="idem_secret").access_key

    cached = _cached()
    assert cached and access_key.encode() not in cached and PASSWORD.encode() not in cached
    # Not even an unsalted digest of the body, which a guesser could test passwords against.
    body = {"name": "idem_secret", "description": "", "basic_auth_user": "firehose"}
    body |= {"basic_auth_password": PASSWORD, "table": None}
    plain = hashlib.sha256(json.dumps(["create_pool", body], sort_keys=True).encode()).hexdigest()
    assert b"fingerprint" in cached and plain.encode() not in cached

    replay = _create(client, admin_key, "idem_secret")
    assert replay.status_code == 201
    assert replay.json() == {**first.json(), "access_key": None}
    assert DataPool.objects.filter(name="idem_secret").count() == 1
