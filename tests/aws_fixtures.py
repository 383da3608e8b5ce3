"""Fixtures of the AWS tests: real moto server processes on loopback, an AWS connection to them,
and a real `default` worker. Test modules load them with

    pytest_plugins = ["tests.aws_fixtures"]

(tests/conftest.py belongs to the whole suite; this keeps the AWS fixtures to the AWS tests).
"""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config

from tests.aws_helpers import AuthMoto, DefaultWorker, MotoServer, make_connection
from tests.conftest import processes


@pytest.fixture(scope="session")
def moto_server():
    server = MotoServer("main")
    yield server
    server.stop()


@pytest.fixture
def moto(moto_server):
    """The shared moto server, emptied for this test."""
    moto_server.reset()
    return moto_server


@pytest.fixture(scope="session")
def auth_moto():
    """A moto server that checks credentials and IAM permissions (INITIAL_NO_AUTH_ACTION_COUNT):
    the first two calls create a user without permissions and its access key."""
    server = MotoServer("auth", {"INITIAL_NO_AUTH_ACTION_COUNT": "2"})
    iam = boto3.client(
        "iam",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )
    iam.create_user(UserName="nobody")
    key = iam.create_access_key(UserName="nobody")["AccessKey"]
    yield AuthMoto(server.url, key["AccessKeyId"], key["SecretAccessKey"])
    server.stop()


@pytest.fixture
def aws_connection(db, moto):
    return make_connection(moto.url, name="Local moto")


@pytest.fixture
def aws(aws_connection):
    from pools.aws.clients import connect

    return connect(aws_connection)


@pytest.fixture
def orders_table(aws):
    from pools.aws import sandbox

    sandbox.create_orders_table(aws, items=3)
    return sandbox.ORDERS_TABLE


@pytest.fixture(scope="session")
def _default_worker_process(django_db_setup, django_db_blocker):
    # SHOAL_TEST_DEFAULT_WORKERS=2 (CI's multi-host run) starts a second one beside it.
    workers = [DefaultWorker() for _ in range(processes("DEFAULT_WORKERS"))]
    with django_db_blocker.unblock():
        for worker in workers:
            worker.start()
    yield workers[0]
    for worker in workers:
        worker.stop()


@pytest.fixture
def default_worker(_default_worker_process, transactional_db):
    """A running `default` worker (AWS tasks) that sees this test's committed data."""
    return _default_worker_process
