"""Runs Shoal's processes in the foreground with interleaved, labelled logs (`make run`).

Each process gets its own process group, so that Ctrl-C or SIGTERM stops it with everything it
started; if one process dies, the others are stopped too, so that a half-running stack never
pretends to be healthy.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from console import sandbox

COLOURS = ["\033[36m", "\033[35m", "\033[33m", "\033[32m", "\033[34m"]
RESET = "\033[0m"


@dataclass
class Proc:
    name: str
    argv: list[str]
    popen: subprocess.Popen | None = None
    # Scheduling priority: loading is throughput work, acknowledging Firehose is latency work,
    # so on a small machine the warehouse worker yields the CPU to the web process.
    nice: int = 0
    # A line the process prints once it serves (so that a notice can come after every banner).
    ready_when: str = ""
    ready: threading.Event = field(default_factory=threading.Event)


def require_redis(url: str, err=sys.stderr) -> None:
    """Stop with one clear line if Redis, which every process needs, is not reachable."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        err.write(
            f"Redis is not reachable at {url} ({exc}). Start it, e.g. `redis-server --daemonize yes` "
            "(Debian: `apt-get install redis-server`), or set REDIS_URL.\n"
        )
        sys.exit(1)


def plan(port: int, python: str = sys.executable) -> list[Proc]:
    web_workers = os.environ.get("WEB_WORKERS", "2")
    web_threads = os.environ.get("WEB_THREADS", "8")
    celery = [python, "-m", "celery", "-A", "console"]
    procs = [
        Proc(
            "web",
            [
                python,
                "-m",
                "gunicorn",
                "console.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                web_workers,
                "--threads",
                web_threads,
                "--timeout",
                "200",
                "--access-logfile",
                "-",
                "--access-logformat",
                "%(m)s %(U)s %(s)s %(b)s %(M)sms",
            ],
            ready_when="Booting worker",
        ),
        # The only process that opens the warehouse; threads share one chDB folder.
        Proc(
            "warehouse",
            celery
            + [
                "worker",
                "-Q",
                "warehouse",
                "--pool",
                "threads",
                "--concurrency",
                os.environ.get("WAREHOUSE_CONCURRENCY", "4"),
                "-n",
                "warehouse@%h",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
            ],
            ready_when=" ready.",
        ),
        Proc(
            "worker",
            celery
            + [
                "worker",
                "-Q",
                "default",
                "--pool",
                "threads",
                "--concurrency",
                "4",
                "-n",
                "default@%h",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
            ],
            ready_when=" ready.",
        ),
        Proc("beat", celery + ["beat", "--loglevel", "INFO"], ready_when="beat: Starting"),
    ]
    # SQL inside chDB must not read Shoal's secrets: the warehouse worker runs confined.
    for proc in procs:
        if proc.name == "warehouse":
            proc.argv = sandbox.command(proc.argv, python)
    return procs


def run(
    procs: list[Proc],
    out=sys.stdout,
    notice: Callable[[], str | None] | None = None,
    every: float = 60.0,
) -> int:
    """Run the processes until one stops or a signal comes. `notice` (e.g. the first-admin link)
    is printed once every process has said it is ready, below all their start-up lines, and
    again every `every` seconds for as long as it returns text."""
    colour = out.isatty()
    width = max(len(p.name) for p in procs)
    lock = threading.Lock()
    stopping = threading.Event()

    def pump(proc: Proc, index: int) -> None:
        label = proc.name.ljust(width)
        if colour:
            label = f"{COLOURS[index % len(COLOURS)]}{label}{RESET}"
        for raw in proc.popen.stdout:
            line = raw.decode(errors="replace").rstrip()
            with lock:
                out.write(f"{label} | {line}\n")
                out.flush()
            if proc.ready_when and proc.ready_when in line:
                proc.ready.set()

    for index, proc in enumerate(procs):
        proc.popen = subprocess.Popen(
            proc.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        threading.Thread(target=pump, args=(proc, index), daemon=True).start()

    def stop(*_):
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    next_notice = 0.0
    while not stopping.is_set():
        if (
            notice
            and time.monotonic() >= next_notice
            and all(p.ready.is_set() or not p.ready_when for p in procs)
        ):
            text = notice()
            if text is None:
                notice = None
            else:
                with lock:
                    out.write(f"{text}\n")
                    out.flush()
                next_notice = time.monotonic() + every
        for proc in procs:
            code = proc.popen.poll()
            if code is not None:
                out.write(f"{proc.name} exited with status {code}; stopping the others\n")
                exit_code = code or 1
                stopping.set()
                break
        stopping.wait(0.5)
    terminate(procs)
    return exit_code


def terminate(procs: list[Proc], grace: float = 10.0) -> None:
    for proc in procs:
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.popen.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.popen.wait()


def _signal_group(proc: Proc, sig: int) -> None:
    if proc.popen and proc.popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.popen.pid, sig)
