"""The only place that builds boto3 clients: explicit timeouts, standard retries, region, endpoint.

    aws = connect(connection)
    aws.client("kinesis").describe_stream_summary(StreamName="orders-cdc")

Credentials come from the connection: the default credential chain, an access key pair (its secret
decrypted here), or a role assumed with STS (with its external id), refreshed before it expires.
The endpoint URL, when set, points every service at a local emulator such as moto.
"""

from __future__ import annotations

import boto3
import botocore.session
from botocore.client import BaseClient
from botocore.config import Config
from botocore.credentials import DeferredRefreshableCredentials
from django.conf import settings

from console.env import env_float, env_int
from pools.aws.models import AwsConnection

USER_AGENT = "shoal-console"
ROLE_SESSION_SECONDS = 3600


def _setting_int(name: str, default: int) -> int:
    value = getattr(settings, name, None)
    return int(value) if value is not None else env_int(name, default, minimum=1)


def _setting_float(name: str, default: float) -> float:
    value = getattr(settings, name, None)
    return float(value) if value is not None else env_float(name, default, minimum=0.1)


def client_config(region: str) -> Config:
    """Timeouts and retries of every AWS call Shoal makes.

    Standard retry mode retries throttling, 5xx and connection errors with jittered exponential
    backoff; AWS_MAX_ATTEMPTS counts the first attempt too.
    """
    return Config(
        region_name=region,
        connect_timeout=_setting_float("AWS_CONNECT_TIMEOUT", 5.0),
        read_timeout=_setting_float("AWS_READ_TIMEOUT", 30.0),
        retries={"mode": "standard", "max_attempts": _setting_int("AWS_MAX_ATTEMPTS", 4)},
        user_agent_extra=USER_AGENT,
    )


def _base_session(connection: AwsConnection) -> boto3.Session:
    if connection.auth_method == AwsConnection.Auth.ACCESS_KEY:
        return boto3.Session(
            aws_access_key_id=connection.access_key_id,
            aws_secret_access_key=connection.secret_access_key,
            region_name=connection.region,
        )
    return boto3.Session(region_name=connection.region)


def endpoint_url(connection: AwsConnection) -> str | None:
    """The connection's emulator endpoint, honoured only where AWS_ALLOW_EMULATOR is set."""
    return (connection.endpoint_url or None) if settings.AWS_ALLOW_EMULATOR else None


def _assume_role_session(connection: AwsConnection) -> boto3.Session:
    """A session whose credentials are the role's, fetched on first use and refreshed by botocore."""
    sts = _base_session(connection).client(
        "sts", endpoint_url=endpoint_url(connection), config=client_config(connection.region)
    )

    def fetch() -> dict:
        params = {
            "RoleArn": connection.role_arn,
            "RoleSessionName": f"shoal-{connection.pk or 'new'}",
            "DurationSeconds": ROLE_SESSION_SECONDS,
        }
        if connection.external_id:
            params["ExternalId"] = connection.external_id
        creds = sts.assume_role(**params)["Credentials"]
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    core = botocore.session.get_session()
    # botocore has no public setter for a credentials object; this is the documented-by-usage way
    # to give a session refreshable credentials of our own.
    core._credentials = DeferredRefreshableCredentials(refresh_using=fetch, method="sts-assume-role")
    return boto3.Session(botocore_session=core, region_name=connection.region)


class Aws:
    """The boto3 clients of one connection, built lazily and reused (one per service)."""

    def __init__(self, connection: AwsConnection):
        self.connection = connection
        self.region = connection.region
        self.endpoint_url = endpoint_url(connection)
        if connection.auth_method == AwsConnection.Auth.ASSUME_ROLE:
            self.session = _assume_role_session(connection)
        else:
            self.session = _base_session(connection)
        self.config = client_config(connection.region)
        self._clients: dict[str, BaseClient] = {}

    def client(self, service: str) -> BaseClient:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service, endpoint_url=self.endpoint_url, config=self.config
            )
        return self._clients[service]


def connect(connection: AwsConnection) -> Aws:
    return Aws(connection)


def available_regions(service: str = "dynamodb") -> list[str]:
    """Every region of every partition botocore knows for a service (offline: from its data)."""
    session = boto3.Session()
    found: set[str] = set()
    for partition in session.get_available_partitions():
        found.update(session.get_available_regions(service, partition_name=partition))
    return sorted(found)
