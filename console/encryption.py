"""Encryption at rest of the secrets Shoal stores (Fernet: AES-128-CBC + HMAC-SHA256, from `cryptography`).

Each kind of secret has a purpose label of its own (AWS secret access keys, pool access keys), and
its key is derived for that purpose with HKDF, so that no two kinds share a key and none is ever
Django's signing key itself. The key material is `AWS_SECRETS_KEY` when set (a Fernet key, or any
long passphrase), otherwise Django's SECRET_KEY. Keys in SECRET_KEY_FALLBACKS still decrypt, so
that rotating SECRET_KEY the Django way does not lose the stored secrets; saving a secret again
re-encrypts it with the current key.
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from console.env import env_str

# The first purpose Shoal had: an explicit AWS_SECRETS_KEY that is a Fernet key was used as it is
# for it, so it stays a decryption key for that purpose (tokens written before purposes existed).
AWS_CONNECTION_SECRET = b"shoal.aws.connection-secret.v1"
POOL_ACCESS_KEY = b"shoal.pool.access-key.v1"


class SecretUnavailable(Exception):
    """A stored secret cannot be decrypted with the keys in force."""


def _derive(material: str, purpose: bytes) -> bytes:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(material.encode())
    return base64.urlsafe_b64encode(raw)


def _is_fernet_key(value: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(value.encode())) == 32
    except (binascii.Error, ValueError):
        return False


def _keys(purpose: bytes, explicit: str, secret_key: str, fallbacks: tuple[str, ...]) -> list[bytes]:
    keys = []
    if explicit:
        if purpose == AWS_CONNECTION_SECRET and _is_fernet_key(explicit):
            keys.append(explicit.encode())
        else:
            keys.append(_derive(explicit, purpose))
    keys.append(_derive(secret_key, purpose))
    keys.extend(_derive(old, purpose) for old in fallbacks)
    return keys


@lru_cache(maxsize=16)
def _fernet(purpose: bytes, explicit: str, secret_key: str, fallbacks: tuple[str, ...]) -> MultiFernet:
    # Cached per key material, so that a decrypt does not pay for HKDF each time; a changed
    # setting (tests, SECRET_KEY rotation on restart) is a new cache entry.
    return MultiFernet([Fernet(key) for key in _keys(purpose, explicit, secret_key, fallbacks)])


def fernet(purpose: bytes) -> MultiFernet:
    explicit = getattr(settings, "AWS_SECRETS_KEY", "") or env_str("AWS_SECRETS_KEY")
    fallbacks = tuple(getattr(settings, "SECRET_KEY_FALLBACKS", []))
    return _fernet(purpose, explicit, settings.SECRET_KEY, fallbacks)


def encrypt(plaintext: str, purpose: bytes) -> str:
    return fernet(purpose).encrypt(plaintext.encode()).decode() if plaintext else ""


def decrypt(token: str, purpose: bytes) -> str:
    if not token:
        return ""
    try:
        return fernet(purpose).decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnavailable(
            "A stored secret cannot be decrypted: SECRET_KEY or AWS_SECRETS_KEY has changed since "
            "it was saved."
        ) from None
