"""The slow suites: which marker a test gets from the fixtures it uses, and a guard that makes an
unmarked test fail loudly if it starts a worker, a moto server, a web server or any other process
anyway, and shows it no warehouse worker (so that `make test-fast`, which deselects the slow
suites, stays fast and honest, and a test passes or fails the same way in both runs).

tests/conftest.py calls `mark_from_fixtures` at collection and `guard` around every test.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading

import pytest

# The markers of the slow suites (pyproject.toml declares them; --strict-markers refuses others).
SLOW = ("worker", "aws", "live", "browser", "clickhouse", "slow")

# A fixture that starts something slow, and the marker every test that uses it gets.
FIXTURE_MARKERS = {
    "warehouse_worker": "worker",
    "limited_worker": "worker",  # tests/test_fair_warehouse.py: a warehouse worker with small limits
    "_default_worker_process": "worker",  # default_worker
    "moto_server": "aws",  # moto, aws_connection, aws, orders_table
    "auth_moto": "aws",
    "live_server": "live",
    "web_server": "live",
    "second_redis": "live",
    "browser": "browser",  # page, page_problems
}

# What a command line starts, by a word in it, and the marker a test needs to start it.
COMMAND_MARKERS = (
    ("celery", "worker"),
    ("runstack", "worker"),
    ("console.supervisor", "worker"),
    ("moto.server", "aws"),
    ("gunicorn", "live"),
    ("redis-server", "live"),
)


class _Running:
    """The test that runs now, seen from every thread (the live server serves in one of its own)."""

    item = None
    elsewhere: list[str] = []  # failures raised in other threads, reported at the test's teardown


_current = _Running()

# Programs quick enough for a fast test (they start no Python, no server).
QUICK_PROGRAMS = {"cat"}


def mark_from_fixtures(items) -> None:
    for item in items:
        for name in sorted({FIXTURE_MARKERS[f] for f in item.fixturenames if f in FIXTURE_MARKERS}):
            item.add_marker(name)


def carries(marker: str) -> bool:
    """Whether the running test carries `marker` (outside a test, anything goes)."""
    item = _current.item
    return item is None or item.get_closest_marker(marker) is not None


def needs(marker: str, what: str, *, or_any_slow: bool = False) -> None:
    """Fail the running test unless it carries `marker` (or, with or_any_slow, any marker of a
    slow suite); outside a test, anything goes."""
    item = _current.item
    if carries(marker):
        return
    if or_any_slow and any(item.get_closest_marker(name) for name in SLOW):
        return
    message = (
        f"{item.nodeid} {what} but is not marked `{marker}`: use the fixture that provides it "
        f"(tests/helpers/markers.py lists them) or add `pytest.mark.{marker}`, so that "
        f"`make test-fast` leaves it out."
    )
    if threading.current_thread() is not threading.main_thread():
        _current.elsewhere.append(message)
    pytest.fail(message, pytrace=False)


def check_other_threads() -> None:
    """Fail the test for what its other threads (the live server's) were refused."""
    if _current.elsewhere:
        messages, _current.elsewhere = _current.elsewhere, []
        pytest.fail("\n".join(messages), pytrace=False)


@contextlib.contextmanager
def guard(item):
    """While `item` runs (setup, call, teardown), the starts of slow things check its markers."""
    _current.item = item
    _current.elsewhere = []
    try:
        yield
    finally:
        _current.item = None


def install() -> None:
    """Wrap the places where a test starts something slow (once per session)."""
    original_popen_init = subprocess.Popen.__init__

    def popen_init(self, args, *rest, **kwargs):
        argv = [str(arg) for arg in args] if isinstance(args, list | tuple) else str(args).split()
        words = " ".join(argv)
        marker = next((marker for word, marker in COMMAND_MARKERS if word in words), None)
        if marker:
            needs(marker, f"starts `{words[:80]}`")
        elif not argv or argv[0].rsplit("/", 1)[-1] not in QUICK_PROGRAMS:
            needs("slow", f"starts `{words[:80]}`", or_any_slow=True)  # a fast test starts none
        return original_popen_init(self, args, *rest, **kwargs)

    subprocess.Popen.__init__ = popen_init

    from console import warehouse_client

    # A test not marked `worker` runs in a world without a warehouse worker, whatever an earlier
    # test left running: pages that ask one show that none runs, and a test that needs one fails
    # the same way in `make test` and in `make test-fast`.
    original_alive = warehouse_client.worker_alive

    def worker_alive() -> bool:
        return carries("worker") and original_alive()

    warehouse_client.worker_alive = worker_alive
    for name in ("call", "submit"):
        original = getattr(warehouse_client, name)

        def asks_the_worker(task, *args, _original=original, **kwargs):
            try:
                return _original(task, *args, **kwargs)
            except warehouse_client.WarehouseUnavailable as exc:
                if carries("worker"):
                    raise
                raise warehouse_client.WarehouseUnavailable(
                    f"{exc} (For the tests: this one is not marked `worker`; use the "
                    "warehouse_worker fixture.)"
                ) from None

        setattr(warehouse_client, name, asks_the_worker)
