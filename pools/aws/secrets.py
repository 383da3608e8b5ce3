"""Encryption at rest of AWS secret access keys (console/encryption.py, under a purpose of their own)."""

from __future__ import annotations

from console import encryption
from console.encryption import AWS_CONNECTION_SECRET as PURPOSE
from console.encryption import SecretUnavailable

__all__ = ["PURPOSE", "SecretUnavailable", "decrypt", "encrypt"]


def encrypt(plaintext: str) -> str:
    return encryption.encrypt(plaintext, PURPOSE)


def decrypt(token: str) -> str:
    try:
        return encryption.decrypt(token, PURPOSE)
    except SecretUnavailable:
        raise SecretUnavailable(
            "The stored secret access key cannot be decrypted: SECRET_KEY or AWS_SECRETS_KEY has "
            "changed since it was saved. Enter the secret access key again."
        ) from None
