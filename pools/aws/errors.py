"""One error type for everything AWS says, with a message a person can act on."""

from __future__ import annotations

import re

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from pools.aws.secrets import SecretUnavailable

CREDENTIAL_CODES = {
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "InvalidSignatureException",
    "ExpiredToken",
    "ExpiredTokenException",
    "IncompleteSignature",
    "MissingAuthenticationToken",
}
DENIED_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "Forbidden",
}
NOT_FOUND_CODES = {
    "ResourceNotFoundException",
    "NoSuchEntity",
    "NoSuchBucket",
    "NotFound",
    "404",
}


class AwsError(Exception):
    """kind: credentials | network | access_denied | not_found | conflict | aws | config."""

    def __init__(self, kind: str, message: str, *, code: str = "", operation: str = ""):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.code = code
        self.operation = operation

    def __str__(self) -> str:
        return self.message


def error_code(exc: ClientError) -> str:
    return _code_and_message(exc)[0]


def _code_and_message(exc: ClientError) -> tuple[str, str]:
    err = exc.response.get("Error", {})
    code = str(err.get("Code", ""))
    message = str(err.get("Message", "") or err.get("message", ""))
    # A JSON-protocol service answering with an XML error body (moto does this for auth errors):
    # botocore then reports the HTTP status as the code and the XML as the message.
    if code.isdigit() and "<Code>" in message:
        found_code = re.search(r"<Code>([^<]+)</Code>", message)
        found_message = re.search(r"<Message>([^<]*)</Message>", message)
        code = found_code.group(1) if found_code else code
        message = found_message.group(1) if found_message else ""
    elif code.isdigit() and message.lstrip().startswith("<"):
        message = re.sub(r"<[^>]+>", " ", message)
        message = " ".join(message.split())
    return code, message


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def describe(exc: BaseException) -> AwsError:
    """Turn any botocore exception into an AwsError with a clear message."""
    if isinstance(exc, AwsError):
        return exc
    if isinstance(exc, SecretUnavailable):
        return AwsError("credentials", str(exc))
    if isinstance(exc, ClientError):
        code, message = _code_and_message(exc)
        operation = exc.operation_name or ""
        where = f" ({operation})" if operation else ""
        if code in CREDENTIAL_CODES:
            return AwsError(
                "credentials",
                f"Bad credentials{where}: AWS did not accept the access key or its secret "
                f"({code}: {message}).",
                code=code,
                operation=operation,
            )
        if code in DENIED_CODES:
            return AwsError(
                "access_denied",
                f"Access denied{where}: the credentials work but lack a permission. {message}".strip(),
                code=code,
                operation=operation,
            )
        kind = "not_found" if code in NOT_FOUND_CODES else "aws"
        text = f"{code}: {message}" if message else code
        return AwsError(
            kind, f"AWS refused {operation or 'the request'}: {text}", code=code, operation=operation
        )
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        return AwsError(
            "network",
            f"No network: cannot reach {getattr(exc, 'kwargs', {}).get('endpoint_url', 'AWS')} "
            "(check the region, the endpoint URL, DNS and any proxy or firewall).",
        )
    if isinstance(exc, ReadTimeoutError):
        return AwsError("network", f"AWS did not answer in time: {exc}")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return AwsError(
            "credentials",
            "No credentials: the default credential chain found none (environment variables, "
            "~/.aws, container or instance role). Choose an access key pair or set them up.",
        )
    if isinstance(exc, NoRegionError):
        return AwsError("config", "No region set for this connection.")
    if isinstance(exc, BotoCoreError):
        return AwsError("aws", f"{type(exc).__name__}: {exc}")
    return AwsError("aws", f"{type(exc).__name__}: {exc}")
