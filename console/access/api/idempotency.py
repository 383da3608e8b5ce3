"""Idempotency-Key on create operations: the first answer is kept for a day (in Redis) and given
again to a retry with the same key and body, so that a client whose connection broke can retry a
create without creating twice.

Nothing secret is kept: the answer is stored with its secret fields (a pool's access key) set to
null, so a replay answers as the first request did without them, and the request is recognised by
an HMAC under the server's key rather than a plain digest of a body that may hold a password."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from django.http import HttpRequest
from django.utils.crypto import salted_hmac

from console.access.api import channel

TTL_SECONDS = 24 * 3600
PENDING = b"pending"
# Fields of an answer that are shown once and never stored (any depth).
SECRET_FIELDS = frozenset({"access_key"})


def without_secrets(value):
    """`value` with every SECRET_FIELDS entry of its dicts set to None."""
    if isinstance(value, dict):
        return {k: None if k in SECRET_FIELDS else without_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_secrets(v) for v in value]
    return value


def _fingerprint(operation: str, payload: dict) -> str:
    text = json.dumps([operation, payload], sort_keys=True, default=str)
    return salted_hmac("shoal.api.idempotency", text, algorithm="sha256").hexdigest()


class IdempotencyConflict(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def once(request: HttpRequest, operation: str, payload: dict, create: Callable[[], tuple[int, dict]]):
    """(status, body) of `create()`, or of its first run under the request's Idempotency-Key."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        return create()
    if len(key) > 255:
        raise IdempotencyConflict(400, "An Idempotency-Key has at most 255 characters.")
    fingerprint = _fingerprint(operation, payload)
    name = f"shoal:api:idempotency:{request.api_key.pk}:{hashlib.sha256(key.encode()).hexdigest()}"
    r = channel.client()
    if not r.set(name, PENDING, nx=True, ex=TTL_SECONDS):
        stored = r.get(name)
        if stored == PENDING or stored is None:
            raise IdempotencyConflict(
                409, "A request with this Idempotency-Key is still running; retry later."
            )
        saved = json.loads(stored)
        if saved["fingerprint"] != fingerprint:
            raise IdempotencyConflict(
                422, "This Idempotency-Key was used for a different request; use a new key for a new request."
            )
        return saved["status"], saved["body"]
    try:
        status, body = create()
    except BaseException:
        r.delete(name)  # a refused create may be corrected and retried with the same key
        raise
    saved = {"fingerprint": fingerprint, "status": status, "body": without_secrets(body)}
    r.set(name, json.dumps(saved), ex=TTL_SECONDS)
    return status, body
