"""The fast subset stays fast: a test is marked from the fixtures it uses, and a test that is not
marked cannot start a worker, moto, a server or any process, and sees no warehouse worker."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from console import warehouse_client
from console.tasks import run_sql
from tests.helpers import markers


class FakeItem:
    def __init__(self, *fixturenames: str):
        self.fixturenames = list(fixturenames)
        self.added: list[str] = []

    def add_marker(self, name: str) -> None:
        self.added.append(name)


def test_it_marks_a_test_from_the_fixtures_it_uses():
    items = [
        FakeItem("warehouse_worker", "_worker_process", "pool"),
        FakeItem("aws", "moto_server", "_default_worker_process", "live_server"),
        FakeItem("pool", "client", "local_warehouse"),
    ]
    markers.mark_from_fixtures(items)
    assert [item.added for item in items] == [["worker"], ["aws", "live", "worker"], []]


@pytest.mark.parametrize(
    "argv, marker",
    [
        ([sys.executable, "-m", "celery", "-A", "console", "worker"], "worker"),
        ([sys.executable, "manage.py", "runstack"], "worker"),
        ([sys.executable, "-m", "moto.server", "-p", "0"], "aws"),
        (["redis-server", "--port", "0"], "live"),
        ([sys.executable, "-c", "pass"], "slow"),
    ],
)
def test_an_unmarked_test_cannot_start_a_process(argv, marker):
    with pytest.raises(pytest.fail.Exception, match=f"is not marked `{marker}`"):
        subprocess.Popen(argv)


def test_a_quick_program_is_allowed(tmp_path):
    (tmp_path / "f").write_text("x")
    assert subprocess.run(["cat", str(tmp_path / "f")], capture_output=True, check=True).stdout == b"x"


@pytest.mark.slow
def test_a_marked_test_can():
    assert subprocess.run([sys.executable, "-c", "pass"], check=False).returncode == 0


def test_an_unmarked_test_sees_no_warehouse_worker(monkeypatch):
    # A heartbeat as a running worker keeps it, under a key of this test's own.
    key = f"shoal:test:beat:{uuid.uuid4().hex}"
    monkeypatch.setattr(warehouse_client, "HEARTBEAT_KEY", key)
    warehouse_client.redis_client().set(key, "1", ex=10)
    assert not warehouse_client.worker_alive()
    with pytest.raises(warehouse_client.WarehouseUnavailable, match="not marked `worker`"):
        warehouse_client.call(run_sql, "SELECT 1")
