"""Creating, checking and revoking API keys; the console page, the admin and `create_api_key`
all call these."""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from console.access.api.models import ApiKey
from pools.models import DataPool

KEY_PREFIX = "shoal_"
# last_used_at is written at most this often per key, so that queries do not all write a row.
LAST_USED_RESOLUTION = timedelta(seconds=30)


@dataclass(frozen=True)
class NewKey:
    api_key: ApiKey
    key: str  # shown once; only its hash is kept


def hash_key(key: str) -> str:
    # The key is 256 random bits: a plain SHA-256 is enough (a slow hash guards guessable passwords).
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    name: str,
    scope: str,
    *,
    pools: list[str] | None = None,
    expires_at: datetime | None = None,
    created_by=None,
    role: str = "editor",
) -> NewKey:
    """A new key; ValidationError with the console's words for a bad name, scope or pool."""
    if scope not in ApiKey.Scope.values:
        raise ValidationError({"scope": f"Choose a scope among {', '.join(ApiKey.Scope.values)}."})
    pools = sorted(set(pools or []))
    if pools and scope != ApiKey.Scope.QUERY:
        raise ValidationError({"pools": "Only query keys are limited to some pools."})
    found = list(DataPool.objects.filter(name__in=pools).exclude(status=DataPool.Status.DELETING))
    unknown = [p for p in pools if p not in {pool.name for pool in found}]
    if unknown:
        raise ValidationError({"pools": f"There is no Data Pool {', '.join(unknown)}."})
    if role not in ("editor", "admin"):
        raise ValidationError({"role": "A manage key is an editor or an admin."})
    if role != "editor" and scope != ApiKey.Scope.MANAGE:
        raise ValidationError({"role": "Only manage keys have a role; query keys read."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    if ApiKey.objects.filter(name=name).exists():
        raise ValidationError({"name": f"An API key named {name!r} already exists."})
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey(
        name=name,
        scope=scope,
        role=role,
        limited=bool(pools),
        prefix=key[: len(KEY_PREFIX) + 4],
        key_hash=hash_key(key),
        expires_at=expires_at,
        created_by=created_by,
    )
    api_key.full_clean()
    with transaction.atomic():
        api_key.save()
        api_key.limited_pools.set(found)
    return NewKey(api_key, key)


def revoke(api_key: ApiKey) -> None:
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    api_key.refresh_from_db()


class KeyRefused(Exception):
    """No key, or a key that is unknown, revoked, expired or of another name; `status` 401."""


def authenticate(key: str | None, *, name: str | None = None) -> ApiKey:
    """The active key `key` (and, when given, named `name`); KeyRefused otherwise."""
    if not key:
        raise KeyRefused("This needs an API key: Authorization: Bearer <key>.")
    api_key = ApiKey.objects.filter(key_hash=hash_key(key)).first()
    if api_key is None or (name is not None and name != api_key.name):
        raise KeyRefused("This API key is not valid.")
    if api_key.revoked:
        raise KeyRefused(f"The API key {api_key.name} was revoked.")
    if api_key.expired:
        raise KeyRefused(f"The API key {api_key.name} expired at {api_key.expires_at:%Y-%m-%d %H:%M} UTC.")
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


def credentials(request: HttpRequest) -> tuple[str | None, str | None]:
    """(name, key) from a request: Bearer, HTTP Basic (name:key), or ClickHouse's own
    X-ClickHouse-User / X-ClickHouse-Key headers."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return None, value.strip()
    if scheme.lower() == "basic" and value.strip():
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None, None
        return user or None, password or None
    if request.headers.get("X-ClickHouse-Key"):
        return request.headers.get("X-ClickHouse-User"), request.headers["X-ClickHouse-Key"]
    return None, None
