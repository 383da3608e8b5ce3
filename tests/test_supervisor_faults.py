"""`make run`'s supervisor under real faults: each child SIGKILLed (restarted, the others keep
running, nothing lost), the supervisor SIGKILLed (every child goes too), SIGTERM (all stop within
the grace period), and a start beside an earlier warehouse worker (refused, naming it).

Each stack runs in a data folder and on a redis-server of its own, so it never meets the suite's
warehouse worker."""

from __future__ import annotations

import contextlib
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

from console.supervisor import GRACE_SECONDS
from console.warehouse_client import HEARTBEAT_KEY
from tests.helpers.firehose import change_record, firehose_body, firehose_headers
from tests.helpers.servers import free_port, http
from tests.helpers.waiting import wait_for
from tests.helpers.workers import ROOT, WorkerProcess, child_env

# They start the supervisor (`manage.py runstack`), which starts workers.
pytestmark = pytest.mark.worker


def _ppids() -> dict[int, int]:
    found = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            found[int(proc.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return found


def descendants(pid: int) -> set[int]:
    ppids = _ppids()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in ppids.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class Stack:
    """`manage.py runstack` in a data folder of its own."""

    ROLES = {
        "web": "gunicorn",
        "warehouse": "-Q warehouse",
        "worker": "-Q default",
        "beat": " beat ",
        "reader": "pull_reader",
    }

    def __init__(self, data_dir: Path, redis_url: str):
        self.data_dir = data_dir
        self.redis_url = redis_url
        self.port = free_port()
        self.log = data_dir / "runstack.log"
        self.proc: subprocess.Popen | None = None
        self.seen: set[int] = set()  # every process of the stack seen, for the clean-up
        self.env = child_env(
            SHOAL_DATA_DIR=str(data_dir),
            REDIS_URL=redis_url,
            DATABASE_URL=f"sqlite:///{data_dir / 'shoal.sqlite3'}",
            PORT=str(self.port),
            PUBLIC_BASE_URL=f"http://127.0.0.1:{self.port}",
            WEB_WORKERS="1",
            WEB_THREADS="4",
            WAREHOUSE_CONCURRENCY="2",
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, timeout=120
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        return done.stdout.decode()

    def start(self, wait: bool = True) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runstack"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if wait:
            wait_for(self.ready, timeout=90, interval=0.25, message=f"the stack to start (see {self.log})")

    def ready(self) -> bool:
        assert self.proc.poll() is None, self.output()
        self.seen |= descendants(self.proc.pid)
        return all(self.child(role) for role in self.ROLES) and self.web_up() and self.warehouse_beats()

    def child(self, role: str) -> int | None:
        ppids = _ppids()
        for pid, parent in ppids.items():
            if parent == self.proc.pid and self.ROLES[role] in cmdline(pid) + " " and alive(pid):
                return pid
        return None

    def web_up(self) -> bool:
        try:
            return http("GET", self.url + "/healthz").status == 200
        except OSError:
            return False

    def warehouse_beats(self) -> bool:
        return bool(redis.Redis.from_url(self.redis_url).exists(HEARTBEAT_KEY))

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill_everything(self) -> None:
        """Whatever a failed test left running."""
        if self.proc is None:
            return
        mine = f"SHOAL_DATA_DIR={self.data_dir}".encode()
        for pid in descendants(self.proc.pid) | {self.proc.pid} | {p for p in self.seen if alive(p)}:
            try:  # a pid seen earlier may belong to someone else by now
                if mine not in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                    continue
            except OSError:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()


@pytest.fixture
def stack_folder(second_redis):
    folder = Path(settings.DATA_DIR) / f"stack-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    url, _ = second_redis
    stacks: list[Stack] = []

    def make() -> Stack:
        stack = Stack(folder, url)
        stacks.append(stack)
        return stack

    make().manage("migrate", "--noinput", "-v", "0")
    yield make
    for stack in stacks:
        stack.kill_everything()
    shutil.rmtree(folder, ignore_errors=True)


def test_a_killed_child_is_restarted_while_the_others_keep_running(stack_folder):
    stack = stack_folder()
    stack.start()
    pool = json.loads(stack.manage("create_pool", "orders_changes", "--json"))
    url = stack.url + "/ingest/firehose/" + pool["endpoint_url"].rsplit("/", 1)[1]

    for role in ["warehouse", "web", "worker", "beat", "reader"]:
        old = stack.child(role)
        others = {other: stack.child(other) for other in Stack.ROLES if other != role}
        os.kill(old, signal.SIGKILL)
        if role == "warehouse":
            # Web does not need the warehouse: a delivery is taken while it restarts.
            wait_for(lambda old=old: not alive(old), timeout=10)
            request_id, body = firehose_body([change_record("while-the-warehouse-restarts")])
            reply = http("POST", url, body, firehose_headers(request_id, pool["access_key"]))
            assert reply.status == 200, reply.body
        wait_for(
            lambda role=role, old=old: stack.child(role) not in (None, old),
            timeout=30,
            message=f"{role} to be restarted",
        )
        # The others kept running, untouched.
        assert {other: stack.child(other) for other in others} == others
        wait_for(stack.ready, timeout=60, interval=0.25, message="the stack to be whole again")
    log = stack.output()
    assert "warehouse exited with status -9" in log and "restarting it in" in log

    # Nothing lost: the delivery taken while the warehouse was down is loaded.
    def loaded() -> bool:
        out = stack.manage("sql", "SELECT count() AS n FROM orders_changes", "--format", "json")
        return json.loads(out)["rows"] == [[1]]

    wait_for(loaded, timeout=60, interval=1.0, message="the delivery to load")

    # SIGTERM stops everything within the grace period.
    everyone = descendants(stack.proc.pid)
    started = time.monotonic()
    stack.proc.send_signal(signal.SIGTERM)
    assert stack.proc.wait(GRACE_SECONDS + 10) == 0
    wait_for(lambda: not any(alive(pid) for pid in everyone), timeout=5, message="every process gone")
    assert time.monotonic() - started < GRACE_SECONDS + 5


def test_every_child_dies_with_a_killed_supervisor(stack_folder):
    stack = stack_folder()
    stack.start()
    everyone = descendants(stack.proc.pid)
    assert len(everyone) >= 5  # web (master and worker), warehouse, worker, beat
    os.kill(stack.proc.pid, signal.SIGKILL)
    stack.proc.wait()
    wait_for(
        lambda: not any(alive(pid) for pid in everyone),
        timeout=15,
        message=f"the children to die with the supervisor: {[cmdline(p) for p in everyone if alive(p)]}",
    )
    # Nothing holds the folder: a new stack starts on it.
    again = stack_folder()
    again.start()
    again.proc.send_signal(signal.SIGTERM)
    assert again.proc.wait(GRACE_SECONDS + 10) == 0


def test_it_refuses_to_start_beside_an_earlier_warehouse_worker(stack_folder):
    stack = stack_folder()
    worker = WorkerProcess(
        env={
            "SHOAL_DATA_DIR": str(stack.data_dir),
            "REDIS_URL": stack.redis_url,
            "DATABASE_URL": stack.env["DATABASE_URL"],
        },
        heartbeat_redis=stack.redis_url,
    )
    worker.start()
    try:
        stack.start(wait=False)
        assert stack.proc.wait(60) == 1
        out = stack.output()
        assert "still holds" in out and str(worker.proc.pid) in out, out
        assert worker.alive()  # it was told about, not disturbed
    finally:
        worker.stop()
