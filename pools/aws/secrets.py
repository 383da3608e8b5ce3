"""Encryption at rest of AWS secret access keys (Fernet: AES-128-CBC + HMAC-SHA256, from `cryptography`).

The key is `AWS_SECRETS_KEY` when set (a Fernet key, or any long passphrase, which is stretched with
HKDF), otherwise derived from Django's SECRET_KEY with HKDF under a purpose label of its own, so that
the derived key is never the signing key itself. Keys in SECRET_KEY_FALLBACKS still decrypt, so that
rotating SECRET_KEY the Django way does not lose the stored secrets; saving a connection again
re-encrypts with the current key.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from console.env import env_str

PURPOSE = b"shoal.aws.connection-secret.v1"


class SecretUnavailable(Exception):
    """A stored secret cannot be decrypted with the keys in force."""


def _derive(material: str) -> bytes:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PURPOSE).derive(material.encode())
    return base64.urlsafe_b64encode(raw)


def _as_fernet_key(value: str) -> bytes:
    """A value that already is a Fernet key is used as it is; anything else is stretched."""
    try:
        if len(base64.urlsafe_b64decode(value.encode())) == 32:
            return value.encode()
    except (binascii.Error, ValueError):
        pass
    return _derive(value)


def _keys() -> list[bytes]:
    explicit = getattr(settings, "AWS_SECRETS_KEY", "") or env_str("AWS_SECRETS_KEY")
    keys = [_as_fernet_key(explicit)] if explicit else []
    keys.append(_derive(settings.SECRET_KEY))
    keys.extend(_derive(old) for old in getattr(settings, "SECRET_KEY_FALLBACKS", []))
    return keys


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in _keys()])


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode() if plaintext else ""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnavailable(
            "The stored secret access key cannot be decrypted: SECRET_KEY or AWS_SECRETS_KEY has "
            "changed since it was saved. Enter the secret access key again."
        ) from None
