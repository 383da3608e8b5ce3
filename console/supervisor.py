"""Runs Shoal's processes in the foreground with interleaved, labelled logs (`make run`).

- Each process gets its own process group, so that Ctrl-C or SIGTERM stops it with everything it
  started, within the grace period (then SIGKILL).
- Each process dies with the supervisor, however the supervisor ends (SIGKILL, the OOM killer, a
  container's hard stop): the kernel sends it SIGKILL then (PR_SET_PDEATHSIG). Nothing is lost by
  that: a 200 is only sent for a durable delivery, and loads are idempotent.
- A process that exits is restarted with back-off and the others keep running: web keeps taking
  deliveries while the warehouse worker restarts, since landing does not need the warehouse.
- At start, the data folder's lock (console/folder_lock.py) refuses to run beside an earlier
  stack or warehouse worker that still holds the folder, naming its processes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis
from django.conf import settings

from console import folder_lock, sandbox

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
    started_at: float = 0.0
    restart_at: float = 0.0
    failures: int = 0  # exits in a row that came soon after a start (for the back-off)


# Back-off between restarts of a process that keeps exiting: 1 s, 2 s, 4 s … 60 s; a process
# that ran STABLE_SECONDS before it exited is restarted after the first step again.
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0
STABLE_SECONDS = 60.0
GRACE_SECONDS = 10.0
PR_SET_PDEATHSIG = 1


def require_redis(url: str, err=sys.stderr) -> None:
    """Stop with one clear line if Redis, which every process needs, is not reachable."""
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        err.write(
            f"Redis is not reachable at {url} ({exc}). Start it, e.g. `redis-server --daemonize yes` "
            "(Debian: `apt-get install redis-server`), or set REDIS_URL.\n"
        )
        sys.exit(1)


def gunicorn_argv(port: int, python: str = sys.executable, *, workers: str, threads: str) -> list[str]:
    """The web process: gunicorn with Shoal's settings (console/gunicorn_conf.py)."""
    return [
        python,
        "-m",
        "gunicorn",
        "console.wsgi:application",
        "-c",
        "python:console.gunicorn_conf",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        workers,
        "--threads",
        threads,
        "--timeout",
        "200",
        "--access-logfile",
        "-",
        "--access-logformat",
        "%(m)s %(U)s %(s)s %(b)s %(M)sms",
    ]


def _celery_worker(celery: list[str], queue: str, concurrency: int) -> list[str]:
    """A Celery worker of one queue, on threads."""
    return celery + [
        "worker",
        "-Q",
        queue,
        "--pool",
        "threads",
        "--concurrency",
        str(concurrency),
        "-n",
        f"{queue}@%h",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
    ]


def plan(port: int, python: str = sys.executable) -> list[Proc]:
    web_workers, web_threads = str(settings.WEB_WORKERS), str(settings.WEB_THREADS)
    celery = [python, "-m", "celery", "-A", "console"]
    procs = [
        Proc(
            "web",
            gunicorn_argv(port, python, workers=web_workers, threads=web_threads),
            ready_when="Booting worker",
        ),
        # The only process that opens the warehouse; threads share one chDB folder.
        Proc(
            "warehouse",
            _celery_worker(celery, "warehouse", settings.WAREHOUSE_CONCURRENCY),
            nice=settings.WAREHOUSE_NICE,
            ready_when=" ready.",
        ),
        Proc("worker", _celery_worker(celery, "default", 4), ready_when=" ready."),
        Proc("beat", celery + ["beat", "--loglevel", "INFO"], ready_when="beat: Starting"),
        # Reads the streams of the pipelines that pull (pools/pull/runner.py); idle without any.
        Proc(
            "reader",
            [python, str(settings.BASE_DIR / "manage.py"), "pull_reader"],
            ready_when="pull reader ready",
        ),
    ]
    # SQL inside chDB must not read Shoal's secrets: the warehouse worker runs confined.
    for proc in procs:
        if proc.name == "warehouse":
            proc.argv = sandbox.command(proc.argv, python)
    return procs


class StopRequest:
    """SIGINT and SIGTERM as the supervisor's handler records them: that a stop was asked for, and
    nothing else. A Python signal handler runs in the main thread between any two bytecodes, even
    inside another handler or while the main thread holds a lock, so the handler takes no lock (a
    threading.Event's `set` does: a second signal landing while the first handler, or the main
    loop's `wait`, held the Event's lock hung the stop for ever); the main loop polls `asked` and
    does the stopping."""

    def __init__(self, event: threading.Event | None = None) -> None:
        self.signals: list[int] = []  # list.append takes no lock the handler could wait on
        self.event = event  # a stop asked for by the caller (tests), checked in the main loop

    def __call__(self, signum: int, _frame=None) -> None:
        self.signals.append(signum)

    def asked(self) -> bool:
        return bool(self.signals) or (self.event is not None and self.event.is_set())


def _child_setup(parent: int, nice: int):
    """A preexec_fn: the child gets SIGKILL when the supervisor ends, however it ends, and runs
    at its CPU priority."""
    libc = ctypes.CDLL(None, use_errno=True)

    def setup() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the supervisor died before prctl took effect
            os._exit(1)
        if nice:
            os.nice(nice)

    return setup


class _Output:
    """The supervisor's one terminal: each process's lines labelled with its name (coloured on a
    terminal), its own lines as `shoal`."""

    def __init__(self, procs: list[Proc], out) -> None:
        self.out = out
        self.colour = out.isatty()
        self.width = max(len(p.name) for p in [*procs, Proc("shoal", [])])
        self.lock = threading.Lock()

    def write(self, text: str) -> None:
        with self.lock:
            self.out.write(f"{text}\n")
            self.out.flush()

    def say(self, message: str) -> None:
        self.write(f"{'shoal'.ljust(self.width)} | {message}")

    def pump(self, proc: Proc, popen: subprocess.Popen, index: int) -> None:
        """Copy a process's output, labelled; mark it ready when it prints its ready line."""
        label = proc.name.ljust(self.width)
        if self.colour:
            label = f"{COLOURS[index % len(COLOURS)]}{label}{RESET}"
        for raw in popen.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.write(f"{label} | {line}")
            if proc.ready_when and proc.ready_when in line:
                proc.ready.set()


def _lock_data_folder(data_dir: Path, output: _Output) -> tuple[bool, int | None]:
    """The data folder's lock, held for the stack's life (inherited by every process); refused,
    naming the processes, while an earlier stack or warehouse worker holds it."""
    held = None
    try:
        held = folder_lock.acquire(Path(data_dir) / "shoal.lock")
        if settings.WAREHOUSE.backend == "chdb":
            folder_lock.check_free(folder_lock.warehouse_lock(settings.WAREHOUSE.path))
    except folder_lock.FolderHeld as exc:
        output.say(str(exc))
        if held is not None:
            os.close(held)
        return False, None
    return True, held


def _start(proc: Proc, index: int, output: _Output, held: int | None) -> None:
    # Popen runs in the main thread only: PR_SET_PDEATHSIG fires when the thread that started the
    # child ends, not the process.
    proc.popen = subprocess.Popen(
        proc.argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_child_setup(os.getpid(), proc.nice),
        pass_fds=(held,) if held is not None else (),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    proc.started_at = time.monotonic()
    threading.Thread(target=output.pump, args=(proc, proc.popen, index), daemon=True).start()


def _keep_running(procs: list[Proc], output: _Output, held: int | None) -> None:
    """One look at every process: start again those whose back-off is over, note the exits."""
    now = time.monotonic()
    for index, proc in enumerate(procs):
        if proc.popen is None:
            if now >= proc.restart_at:
                output.say(f"starting {proc.name} again")
                _start(proc, index, output, held)
            continue
        code = proc.popen.poll()
        if code is None:
            continue
        ran = now - proc.started_at
        proc.failures = 1 if ran >= STABLE_SECONDS else proc.failures + 1
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (proc.failures - 1))
        output.say(
            f"{proc.name} exited with status {code} after {ran:.0f} s; the others keep running; "
            f"restarting it in {delay:g} s"
        )
        _signal_group(proc, signal.SIGKILL)  # whatever it left behind in its group
        proc.popen = None
        proc.restart_at = now + delay


def run(
    procs: list[Proc],
    out=sys.stdout,
    *,
    data_dir: Path | None = None,
    grace: float = GRACE_SECONDS,
    notice: Callable[[], str | None] | None = None,
    every: float = 60.0,
    stop_event: threading.Event | None = None,
) -> int:
    """Start every process and keep them running until SIGINT or SIGTERM (or `stop_event`);
    returns the exit code.

    Signals are handled from the first moment, so that a SIGTERM during start-up still stops what
    was started. `notice` (e.g. the first-admin link) is printed once every process has said it
    is ready, below all their start-up lines, and again every `every` seconds for as long as it
    returns text.
    """
    output = _Output(procs, out)
    stopping = StopRequest(stop_event)
    signal.signal(signal.SIGINT, stopping)
    signal.signal(signal.SIGTERM, stopping)
    held = None
    if data_dir is not None:
        locked, held = _lock_data_folder(data_dir, output)
        if not locked:
            return 1
    for index, proc in enumerate(procs):
        if stopping.asked():
            break
        _start(proc, index, output, held)

    next_notice = 0.0
    while not stopping.asked():
        now = time.monotonic()
        if notice and now >= next_notice and all(p.ready.is_set() or not p.ready_when for p in procs):
            text = notice()
            if text is None:
                notice = None
            else:
                output.write(text)
                next_notice = now + every
        _keep_running(procs, output, held)
        time.sleep(0.2)
    output.say(f"stopping (at most {grace:g} s)")
    terminate(procs, grace)
    if held is not None:
        os.close(held)
    return 0


def terminate(procs: list[Proc], grace: float = GRACE_SECONDS) -> None:
    """SIGTERM to every process group; SIGKILL to those still there after `grace` seconds."""
    running = [p for p in procs if p.popen is not None]
    for proc in running:
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(max(0.1, deadline - time.monotonic()))
        _signal_group(proc, signal.SIGKILL)  # the process, or what it left in its group
        proc.popen.wait()


def _signal_group(proc: Proc, sig: int) -> None:
    if proc.popen is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.popen.pid, sig)
