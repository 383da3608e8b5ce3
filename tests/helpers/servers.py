"""Real HTTP, as Firehose and browsers make it: requests, free ports, the web process as
`make run` starts it (gunicorn), and whether a Redis server answers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import redis
from django.conf import settings

from tests.helpers.workers import ROOT, child_env, processes


class Reply:
    def __init__(self, status: int, headers, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> dict:
        return json.loads(self.body)


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None) -> Reply:
    """A real HTTP request, as Firehose would make it; errors are returned, not raised."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return Reply(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.headers, exc.read())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 60.0) -> None:
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


def start_web_server(**env: str) -> tuple[subprocess.Popen, str]:
    """The web process as `make run` starts it (gunicorn with Shoal's settings), on a free port;
    SHOAL_TEST_WEB web processes (gunicorn workers) answer on it."""
    from console import supervisor

    port = free_port()
    log = Path(settings.DATA_DIR) / "web-server.log"
    env.setdefault("WEB_THREADS", "4")
    threads = env["WEB_THREADS"]  # the web process's settings read the same number
    proc = subprocess.Popen(
        supervisor.gunicorn_argv(port, sys.executable, workers=str(processes("WEB")), threads=threads),
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


def redis_pings(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False
