"""Who may deliver to a pool's Firehose endpoint: its access key, or its HTTP Basic credentials.

- The access key is 256 random bits made by Shoal, so one SHA-256 and a constant-time comparison
  check it (DataPool.check_access_key); there is nothing to guess, and it is never throttled: a
  Firehose stream that sends the right key is never refused.
- A Basic password is chosen by a person, so it is kept as a slow (PBKDF2) hash, and every Basic
  credential costs one such check whether or not the user name is right or the pool has Basic
  credentials at all (DataPool.check_basic_auth): the time of an answer says nothing about the
  user name. Credentials this process has accepted before are remembered as an HMAC under a key
  that lives only in its memory, so Firehose's deliveries do not pay for PBKDF2 each time.
- Failures (a wrong key or Basic pair) are counted in Redis per pool and client address; past
  INGEST_AUTH_FAILURE_LIMIT within INGEST_AUTH_LOCKOUT_SECONDS, Basic credentials from that
  address to that pool are answered 429 without being checked until the period ends (Firehose
  retries; an attacker elsewhere cannot hold back Firehose's addresses). Without Redis nothing is
  counted and every credential is checked: ingest never depends on Redis.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

import redis
from django.conf import settings
from django.http import HttpRequest

from console.accounts import client_address
from pools.ingest import envelope
from pools.models import DataPool

log = logging.getLogger(__name__)

WRONG = "missing or wrong X-Amz-Firehose-Access-Key"


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str


# Successful Basic checks, keyed by the stored hash, so that each delivery does not pay for
# PBKDF2 again; a changed password (a new salted hash) is checked afresh. The presented
# credentials are kept only as an HMAC under a key that lives and dies with this process, so the
# cache holds nothing a guesser could test passwords against offline.
_verified: set[tuple] = set()
_CACHE_KEY = secrets.token_bytes(32)


def _check_basic(pool: DataPool, user: str, password: str) -> bool:
    digest = hmac.new(_CACHE_KEY, f"{user}\0{password}".encode(), hashlib.sha256).hexdigest()
    key = (pool.pk, pool.basic_auth_password, user, digest)
    if key in _verified:
        return True
    if pool.check_basic_auth(user, password):
        if len(_verified) > 4096:
            _verified.clear()
        _verified.add(key)
        return True
    return False


def refusal(pool: DataPool, request: HttpRequest) -> Refusal | None:
    """None when the request carries the pool's access key or Basic credentials.

    Firehose can only send the access key header, so the header may also carry the Basic
    credentials themselves (base64 of user:password).
    """
    key = request.headers.get("X-Amz-Firehose-Access-Key", "")
    if key and pool.check_access_key(key):
        return None
    if key:
        creds = envelope.decode_user_password(key)
    else:
        creds = envelope.basic_credentials(request.headers.get("Authorization", ""))
    address = client_address(request)
    if creds:
        wait = _throttled_for(pool, address)
        if wait:
            return Refusal(429, f"too many failed attempts from this address; retry in {wait} s")
        if _check_basic(pool, *creds):
            return None
    _count_failure(pool, address)
    return Refusal(401, WRONG)


# --- failures per pool and address, in Redis ------------------------------------------------------

_clients: dict[str, redis.Redis] = {}


def _redis() -> redis.Redis:
    url = settings.REDIS_URL
    found = _clients.get(url)
    if found is None:  # short timeouts: a slow Redis must not hold Firehose's answer
        found = _clients[url] = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    return found


def _failures_key(pool: DataPool, address: str) -> str:
    return f"shoal:ingest:auth-failures:{pool.public_id}:{address}"


def _throttled_for(pool: DataPool, address: str) -> int:
    """Seconds until Basic credentials from `address` are checked again for `pool`; 0 now."""
    try:
        with _redis().pipeline() as pipe:
            count, ttl = pipe.get(_failures_key(pool, address)).ttl(_failures_key(pool, address)).execute()
    except redis.RedisError as exc:
        log.warning("ingest: cannot read failed-authentication counts (not throttling): %s", exc)
        return 0
    if count is None or int(count) < settings.INGEST_AUTH_FAILURE_LIMIT:
        return 0
    return max(int(ttl), 1)


def _count_failure(pool: DataPool, address: str) -> None:
    name = _failures_key(pool, address)
    try:
        with _redis().pipeline() as pipe:
            pipe.incr(name).expire(name, settings.INGEST_AUTH_LOCKOUT_SECONDS, nx=True).execute()
    except redis.RedisError as exc:
        log.warning("ingest: cannot count a failed authentication: %s", exc)
