"""Celery worker processes as `make run` starts them, and the environment of any process a test
starts (this run's settings, data folder and database)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    from django.db import connection

    conf = connection.settings_dict
    if conf["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(conf['NAME']).resolve()}"
    auth = f"{conf['USER']}:{conf['PASSWORD']}@" if conf["USER"] else ""
    return f"postgres://{auth}{conf['HOST'] or '127.0.0.1'}:{conf['PORT'] or 5432}/{conf['NAME']}"


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
        env = child_env(**self.env)
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


def DefaultWorker() -> WorkerProcess:  # noqa: N802 - reads as the class it was
    """A `default`-queue worker; moto's 500 for a call it lacks is retried once, not three times."""
    return WorkerProcess("default", env={"AWS_MAX_ATTEMPTS": "2"})
