"""Fixtures: a real warehouse worker process (Celery + chDB), real Redis, real HTTP."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings

from pools.ingest import records

ROOT = Path(__file__).resolve().parent.parent


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


def database_url() -> str:
    from django.db import connection

    conf = connection.settings_dict
    if conf["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(conf['NAME']).resolve()}"
    auth = f"{conf['USER']}:{conf['PASSWORD']}@" if conf["USER"] else ""
    return f"postgres://{auth}{conf['HOST'] or '127.0.0.1'}:{conf['PORT'] or 5432}/{conf['NAME']}"


class WorkerProcess:
    """A Celery worker on one queue in its own process, as `make run` starts it."""

    def __init__(
        self, queues: str = "warehouse", env: dict | None = None, heartbeat_redis: str | None = None
    ):
        self.queues = queues
        self.env = env or {}
        self.redis_url = heartbeat_redis or settings.REDIS_URL
        self.name = f"test-{queues}-{uuid.uuid4().hex[:6]}@localhost"
        self.proc: subprocess.Popen | None = None
        self.log = Path(settings.DATA_DIR) / f"worker-{queues}.log"

    def start(self) -> None:
        from console import sandbox
        from console.warehouse_client import HEARTBEAT_KEY

        client = redis.Redis.from_url(self.redis_url)
        if self.queues == "warehouse":
            client.delete(HEARTBEAT_KEY)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": database_url(),
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "console",
            "worker",
            "-Q",
            self.queues,
            "--pool",
            "threads",
            "--concurrency",
            "4",
            "-n",
            self.name,
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ]
        if self.queues == "warehouse":  # confined as `make run` starts it (console/sandbox.py)
            argv = sandbox.command(argv, mode=env.get("WAREHOUSE_SANDBOX") or settings.WAREHOUSE_SANDBOX)
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while not self._ready(client):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.queues} worker exited: see {self.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.queues} worker did not start in 60 s: see {self.log}")
            time.sleep(0.1)

    def _ready(self, client) -> bool:
        if self.queues == "warehouse":  # it beats once the warehouse is open
            from console.warehouse_client import HEARTBEAT_KEY

            return bool(client.exists(HEARTBEAT_KEY))
        from console.celery import app

        return bool(app.control.ping(destination=[self.name], timeout=0.5))

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.queues == "warehouse":
            from console.warehouse_client import HEARTBEAT_KEY

            redis.Redis.from_url(self.redis_url).delete(HEARTBEAT_KEY)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def alive(self) -> bool:
        return bool(self.proc and self.proc.poll() is None)


@pytest.fixture(scope="session")
def _worker_process(django_db_setup, django_db_blocker):
    worker = WorkerProcess()
    with django_db_blocker.unblock():
        worker.start()
    yield worker
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
    """No warehouse worker while the test drives the loader itself; restarted afterwards."""
    _worker_process.kill()
    redis.Redis.from_url(settings.REDIS_URL).delete("warehouse")  # its queued load tasks
    yield
    _worker_process.start()


def fresh_pool(name: str, **kwargs):
    """A pool with a fixed name (for pages and screenshots), its warehouse table dropped first:
    warehouse tables outlive Django's per-test flush."""
    from console import warehouse_client
    from pools.services import create_pool
    from pools.tasks import warehouse_drop_table

    warehouse_client.call(warehouse_drop_table, 0, name)
    return create_pool(name, **kwargs)


@pytest.fixture
def pool_name():
    return f"pool_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def pool(transactional_db, pool_name):
    from pools.services import create_pool

    return create_pool(
        pool_name, description="test pool", basic_auth_user="firehose", basic_auth_password="s3cret-pass"
    )


# --- DynamoDB change records, as Kinesis Data Streams for DynamoDB writes them ------------------


# Each record a test makes is a millisecond later than the one before, as real changes are.
_change_clock = itertools.count(1719347890250)


def change_record(
    order_id: str,
    event: str = "INSERT",
    *,
    quantity: int = 2,
    ts_ms: int | None = None,
    taqueria: str = "La Paloma",
) -> dict:
    keys = {"order_id": {"S": order_id}, "timestamp": {"S": "2024-05-08T13:20:37Z"}}
    image = {
        **keys,
        "taqueria": {"S": taqueria},
        "quantity": {"N": str(quantity)},
        "total_price": {"S": "12.50"},
        "orderItems": {"L": [{"M": {"name": {"S": "al pastor"}, "qty": {"N": "2"}}}]},
    }
    old = {**image, "quantity": {"N": str(quantity - 1)}}
    return records.change_record(
        event,
        keys=keys,
        new_image=image if event in ("INSERT", "MODIFY") else None,
        old_image=old if event in ("MODIFY", "REMOVE") else None,
        event_id=str(uuid.uuid4()),
        created=ts_ms or next(_change_clock),
        table_name="orders",
        region="us-east-1",
        size_bytes=120,
    )


def firehose_body(change_records: list, request_id: str | None = None) -> tuple[str, bytes]:
    """A Firehose request body; records may be dicts (encoded) or raw bytes."""
    request_id = request_id or str(uuid.uuid4())
    raws = [r if isinstance(r, bytes) else json.dumps(r).encode() for r in change_records]
    return request_id, records.firehose_body(request_id, raws)


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


class Reply:
    def __init__(self, status: int, headers, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> dict:
        return json.loads(self.body)


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None) -> Reply:
    """A real HTTP request, as Firehose would make it; errors are returned, not raised."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return Reply(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.headers, exc.read())


def firehose_headers(request_id: str, access_key: str | None, **extra) -> dict:
    headers = {
        "Content-Type": "application/json",
        "X-Amz-Firehose-Protocol-Version": "1.0",
        "X-Amz-Firehose-Request-Id": request_id,
        "X-Amz-Firehose-Source-Arn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/orders",
    }
    if access_key is not None:
        headers["X-Amz-Firehose-Access-Key"] = access_key
    headers.update(extra)
    return headers


def endpoint(live_server, pool) -> str:
    return live_server.url + pool.endpoint_path()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 60.0) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"the server exited with status {proc.returncode}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def child_env(**extra: str) -> dict:
    """The environment of a process a test starts: this run's settings, data folder and database."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def processes(kind: str) -> int:
    """How many web processes (WEB) or default workers (DEFAULT_WORKERS) the tests start: 1, or
    what SHOAL_TEST_<kind> says (CI's multi-host run uses 2)."""
    return int(os.environ.get(f"SHOAL_TEST_{kind}", "1"))


def start_web_server(**env: str) -> tuple[subprocess.Popen, str]:
    """The web process as `make run` starts it (gunicorn with Shoal's settings), on a free port;
    SHOAL_TEST_WEB web processes (gunicorn workers) answer on it."""
    from console import supervisor

    port = free_port()
    log = Path(settings.DATA_DIR) / "web-server.log"
    proc = subprocess.Popen(
        supervisor.gunicorn_argv(port, sys.executable, workers=str(processes("WEB")), threads="4"),
        cwd=ROOT,
        env=child_env(**env),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", proc)
    except BaseException:
        stop_web_server(proc)
        raise
    return proc, f"http://127.0.0.1:{port}"


def stop_web_server(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


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


def redis_pings(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


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


def land_direct(pool, records: list, request_id: str | None = None):
    """Land a delivery as the endpoint does, without HTTP (for volume)."""
    from pools.ingest import envelope
    from pools.ingest.landing import land

    request_id, body = firehose_body(records, request_id)
    env = envelope.parse(body, header_request_id=request_id)
    land(pool, env, body, "")
    return request_id
