"""Helpers of the AWS tests: moto server processes, connections, call records, pipeline rows and
the objects Firehose leaves in S3. The fixtures built on them are in tests/conftest.py."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from tests.helpers.servers import free_port

ACCOUNT = "123456789012"  # moto's account


class MotoServer:
    """`python -m moto.server` in its own process (not the in-process mock)."""

    def __init__(self, name: str, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(settings.DATA_DIR) / f"moto-{name}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env={**os.environ, **(env or {})},
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"moto server did not start: see {self.log}")
            time.sleep(0.1)

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/moto-api/", timeout=1):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    def reset(self) -> None:
        """Forget every resource (between tests)."""
        req = urllib.request.Request(self.url + "/moto-api/reset", method="POST", data=b"")
        urllib.request.urlopen(req, timeout=10).close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@dataclass
class AuthMoto:
    url: str
    key_id: str  # a user with no policy: authenticated, but denied everything
    secret: str


def make_connection(
    endpoint_url: str,
    *,
    name: str = "",
    region: str = "us-east-1",
    key: str = "testing",
    secret: str = "testing",
):
    from pools.aws.models import AwsConnection

    connection = AwsConnection(
        name=name or f"moto-{uuid.uuid4().hex[:6]}",
        region=region,
        auth_method=AwsConnection.Auth.ACCESS_KEY,
        access_key_id=key,
        endpoint_url=endpoint_url,
    )
    connection.set_secret_access_key(secret)
    connection.save()
    return connection


def fast_timing():
    from pools.aws.provisioning.base import Timing

    return Timing(
        poll_seconds=0.05,
        firehose_poll_seconds=0.05,
        stream_wait_seconds=10,
        firehose_wait_seconds=10,
        firehose_delete_wait_seconds=10,
        destination_wait_seconds=10,
        iam_retry_seconds=5,
    )


def record_calls(aws, services=("kinesis", "s3", "iam", "logs", "firehose", "dynamodb")) -> list:
    """Every AWS operation the clients make, in order, as (operation name, the caller's params).

    Registered before any Stubber is activated, so stubbed calls are recorded too."""
    calls: list = []

    def recorder(params, model, **_):
        calls.append((model.name, dict(params)))

    for service in services:
        aws.client(service).meta.events.register("before-parameter-build.*.*", recorder)
    return calls


def make_pipeline(pool, aws, table: str):
    """An active pipeline row whose streaming step is done (the snapshot's precondition), without
    provisioning anything: for tests of what happens once a table streams to a pool."""
    from django.utils import timezone

    from pools.aws.models import Pipeline, SandboxRelay

    pipeline = Pipeline.objects.create(
        pool=pool,
        connection=aws.connection,
        status=Pipeline.Status.ACTIVE,
        table_name=table,
        table_arn=f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}",
        stream_name=f"{table}-cdc",
        bucket_name="b",
        role_name="r",
        firehose_name=f"{table}-to-shoal",
        http_endpoint_name="Shoal",
        endpoint_url=pool.endpoint_url(),
        destination_enabled_at=timezone.now(),
    )
    SandboxRelay.objects.create(pipeline=pipeline, emulated=True)
    return pipeline


def failed_object(records: list[dict]) -> bytes:
    """An S3 object as Firehose writes failed HTTP-endpoint deliveries: JSON lines, rawData base64."""
    lines = []
    for n, record in enumerate(records):
        lines.append(
            json.dumps(
                {
                    "attemptsMade": 5,
                    "arrivalTimestamp": 1719347891599,
                    "errorCode": "HttpEndpoint.DestinationException",
                    "errorMessage": "Received the following response from the endpoint destination. "
                    '{"requestId": "3b1c", "timestamp": 1719347891712, "errorMessage": "Unauthorized"}',
                    "attemptEndingTimestamp": 1719348081318,
                    "rawData": base64.b64encode(json.dumps(record).encode()).decode(),
                    "subsequenceNumber": 0,
                    "dataId": f"49607357361271740811418664280693044274821622880012337186.{n}",
                }
            )
        )
    return ("\n".join(lines) + "\n").encode()
