"""Fixtures: a real warehouse worker process (Celery + chDB), real Redis, real HTTP, moto servers.

Helpers live in tests/helpers/ (import them from there, not from this file). A test that uses a
fixture that starts something slow is marked for it (tests/helpers/markers.py), so that
`make test-fast` leaves it out (docs/contributing.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import boto3
import pytest
import redis
from botocore.config import Config
from django.conf import settings
from django.contrib.auth import get_user_model

from tests.helpers import markers
from tests.helpers.aws import AuthMoto, MotoServer, make_connection
from tests.helpers.firehose import InProcess
from tests.helpers.servers import free_port, redis_pings, start_web_server, stop_web_server
from tests.helpers.waiting import wait_for
from tests.helpers.workers import DefaultWorker, WorkerProcess, processes

RUN_CLAIM_KEY = "shoal:test-run"


def _claim_redis_database(client: redis.Redis) -> None:
    """Refuse to share a Redis database with another live test run: its workers would take this
    run's tasks and look for this run's pools in their own database (a load that never comes)."""
    holder = client.get(RUN_CLAIM_KEY)
    if holder:
        pid, _, folder = holder.decode().partition(":")
        alive = Path(f"/proc/{pid}").exists() and int(pid) != os.getpid()
        if alive:
            pytest.exit(
                f"Redis database {settings.REDIS_URL} is in use by the test run of process {pid} "
                f"(data folder {folder}); give this run another REDIS_URL and SHOAL_DATA_DIR",
                returncode=3,
            )
    client.flushdb()
    client.set(RUN_CLAIM_KEY, f"{os.getpid()}:{settings.DATA_DIR}")


def pytest_configure(config):
    markers.install()


def pytest_sessionstart(session):
    # A clean warehouse and Redis database for every run.
    shutil.rmtree(Path(settings.DATA_DIR) / "warehouse", ignore_errors=True)
    shutil.rmtree(Path(settings.DATA_DIR) / "spool", ignore_errors=True)
    shutil.rmtree(Path(settings.DATA_DIR) / "landing", ignore_errors=True)
    _claim_redis_database(redis.Redis.from_url(settings.REDIS_URL))


def pytest_sessionfinish(session):
    client = redis.Redis.from_url(settings.REDIS_URL)
    if client.get(RUN_CLAIM_KEY) == f"{os.getpid()}:{settings.DATA_DIR}".encode():
        client.delete(RUN_CLAIM_KEY)


def pytest_collection_modifyitems(config, items):
    markers.mark_from_fixtures(items)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    with markers.guard(item):
        return (yield)


@pytest.fixture(autouse=True)
def _slow_suites_checked():
    """A refusal in another thread (a view the live server runs) fails the test too."""
    yield
    markers.check_other_threads()


@pytest.fixture(scope="session", autouse=True)
def _flush_waits_out_deadlocks():
    """On PostgreSQL, the flush after a transactional test (one TRUNCATE of every table) can
    deadlock with a worker still finishing that test's load (it updates a delivery, then its
    pool); PostgreSQL then cancels the flush. Try it again, as the worker's transaction is over by
    then. (SQLite makes the flush wait instead.)"""
    from django.core.management.base import CommandError
    from django.test import TransactionTestCase

    original = TransactionTestCase._fixture_teardown

    def teardown(self):
        for attempt in range(5):
            try:
                return original(self)
            except CommandError as exc:
                if "deadlock" not in str(exc.__cause__ or exc).lower() or attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))

    TransactionTestCase._fixture_teardown = teardown
    yield
    TransactionTestCase._fixture_teardown = original


# --- the warehouse worker ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def _worker_process(django_db_setup, django_db_blocker):
    """The session's warehouse worker: started by the first test that needs one running, kept
    for the next, stopped at the end."""
    worker = WorkerProcess()
    yield worker
    if worker.alive():
        worker.stop()


@pytest.fixture
def warehouse_worker(_worker_process, transactional_db):
    """A running warehouse worker that sees this test's committed data."""
    if not _worker_process.alive():
        _worker_process.start()
    yield _worker_process
    if not _worker_process.alive():
        _worker_process.start()


@pytest.fixture
def no_worker(_worker_process, transactional_db):
    """No warehouse worker while the test drives the loader itself (with `local_warehouse`): the
    session's worker, if an earlier test started it, is stopped, and the next test that needs
    one starts it again. Starts nothing, so a test that uses it stays in the fast subset."""
    if _worker_process.alive():
        _worker_process.kill()
    redis.Redis.from_url(settings.REDIS_URL).delete("warehouse")  # its queued load tasks
    yield


@pytest.fixture(scope="session")
def local_warehouse():
    """A chDB warehouse opened by the test process itself, in a folder of its own (the worker
    process holds the main one), for calling the loader's functions directly."""
    from console.env import WarehouseConfig
    from console.warehouse.chdb_backend import ChdbWarehouse

    path = Path(settings.DATA_DIR) / "warehouse-local"
    shutil.rmtree(path, ignore_errors=True)
    warehouse = ChdbWarehouse(WarehouseConfig(backend="chdb", path=str(path), database="shoal"))
    warehouse.bootstrap()
    yield warehouse
    warehouse.close()


# --- pools -------------------------------------------------------------------------------------


@pytest.fixture
def pool_name():
    return f"pool_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def pool(transactional_db, pool_name):
    from pools.services import create_pool

    return create_pool(
        pool_name, description="test pool", basic_auth_user="firehose", basic_auth_password="s3cret-pass"
    )


@pytest.fixture
def endpoint_server(client):
    """Where a test sends Firehose requests: Django's test client, in this process (fast); tests
    that need a real server's behaviour take `live_server` instead."""
    return InProcess(client)


@pytest.fixture
def admin_client(client):
    """A superuser signed in (in place of pytest-django's, with a password of Shoal's length)."""
    user = get_user_model().objects.create_superuser("admin", "a@example.com", "pw-for-tests-123")
    client.force_login(user)
    return client


# --- servers -----------------------------------------------------------------------------------


@pytest.fixture
def web_server(transactional_db):
    proc, url = start_web_server()
    yield url
    stop_web_server(proc)


@pytest.fixture
def second_redis():
    """A redis-server of this test's own, on a free port, that the test can stop."""
    port = free_port()
    folder = Path(settings.DATA_DIR) / f"redis-{port}"
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    wait_for(lambda: redis_pings(url), timeout=10, message="the second redis-server")
    yield url, proc
    if proc.poll() is None:
        proc.terminate()
        proc.wait(10)
    shutil.rmtree(folder, ignore_errors=True)


# --- AWS: moto server processes on loopback, a connection to them, a `default` worker ----------


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
