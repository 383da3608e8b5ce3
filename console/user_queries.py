"""The admission point for users' queries, inside the warehouse worker: a fair, bounded pool.

Every query a person or key sends (SQL Console, Preview, Replica check, a view's Test,
/api/v1/sql, /clickhouse) reaches the warehouse worker as a Celery task that only hands its work
to this pool and returns at once, so the worker's Celery threads stay free to load deliveries and
run backfills (that work has a freshness target). The pool then:

- runs at most WAREHOUSE_USER_CONCURRENCY queries at once;
- lets one identity (a user, a key) run SQL_MAX_CONCURRENT_PER_USER of them and queue
  SQL_MAX_QUEUED_PER_USER more; one more is refused at once with a Retry-After estimate (the web
  side answers 429), never queued behind that identity's own heavy queries;
- serves identities round-robin: a free thread goes to the next identity in turn that has work
  waiting and is under its running limit, so one identity's queue never makes another's small
  query wait for it;
- does not start a query whose caller has given up.

Counts are mirrored in Redis (console.admission) for /metrics, whichever process answers it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from celery import states
from celery.exceptions import Ignore
from django.conf import settings
from django.utils import timezone

from console import admission
from console.warehouse import loggable

log = logging.getLogger(__name__)


@dataclass
class Refusal:
    """Why a query was not admitted, and when trying again makes sense."""

    message: str
    retry_after: int

    def as_error(self) -> dict:
        return {"error": self.message, "code": None, "refused": True, "retry_after": self.retry_after}


@dataclass
class _Identity:
    queue: deque = field(default_factory=deque)
    started: list[float] = field(default_factory=list)  # start times of its running queries


class FairPool:
    """Threads that serve identities round-robin, with per-identity running and queued bounds."""

    def __init__(self, workers: int, per_identity: int, queued_per_identity: int):
        self.workers, self.per_identity, self.queued_per_identity = workers, per_identity, queued_per_identity
        self._cv = threading.Condition()
        self._identities: dict[str, _Identity] = {}
        self._turn: deque[str] = deque()  # identities with work waiting, in serving order
        self._threads: list[threading.Thread] = []

    def submit(self, identity: str, job: Callable[[], None]) -> Refusal | None:
        """Queue `job` for `identity`; a Refusal (nothing queued) when it is over its bounds."""
        with self._cv:
            state = self._identities.setdefault(identity, _Identity())
            running, queued = len(state.started), len(state.queue)
            if running + queued >= self.per_identity + self.queued_per_identity:
                refusal = self._refusal(state)
            else:
                refusal = None
                state.queue.append(job)
                if identity not in self._turn:
                    self._turn.append(identity)
                self._start_threads()
                self._cv.notify()
        admission.record_worker(identity, "refused" if refusal else "queued")
        return refusal

    def _refusal(self, state: _Identity) -> Refusal:
        limit = settings.SQL_MAX_EXECUTION_SECONDS
        oldest = min(state.started) if state.started else time.monotonic()
        retry = max(1, min(limit, math.ceil(limit - (time.monotonic() - oldest))))
        return Refusal(
            f"You already have {len(state.started)} queries running and {len(state.queue)} waiting "
            f"(SQL_MAX_CONCURRENT_PER_USER={self.per_identity}, "
            f"SQL_MAX_QUEUED_PER_USER={self.queued_per_identity}); "
            f"try again in {retry} s, when one has finished.",
            retry,
        )

    def counts(self, identity: str) -> tuple[int, int]:
        with self._cv:
            state = self._identities.get(identity)
            return (len(state.started), len(state.queue)) if state else (0, 0)

    def _start_threads(self) -> None:
        while len(self._threads) < self.workers:
            thread = threading.Thread(
                target=self._serve, name=f"user-query-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _next(self) -> tuple[str, Callable[[], None]] | None:
        for _ in range(len(self._turn)):
            identity = self._turn[0]
            self._turn.rotate(-1)  # whoever is served goes to the back of the line
            state = self._identities[identity]
            if len(state.started) < self.per_identity:
                job = state.queue.popleft()
                if not state.queue:
                    self._turn.remove(identity)
                state.started.append(time.monotonic())
                return identity, job
        return None

    def _serve(self) -> None:
        while True:
            with self._cv:
                picked = self._next()
                while picked is None:
                    self._cv.wait()
                    picked = self._next()
            identity, job = picked
            admission.record_worker(identity, "started")
            try:
                job()
            except Exception:  # a job reports its own errors; never lose the thread
                log.exception("a user query's job failed")
            finally:
                self._finish(identity)

    def _finish(self, identity: str) -> None:
        with self._cv:
            state = self._identities[identity]
            state.started.pop(0)
            if not state.started and not state.queue:
                del self._identities[identity]
            self._cv.notify_all()
        admission.record_worker(identity, "finished")


_lock = threading.Lock()
_pool: FairPool | None = None


def pool() -> FairPool:
    global _pool
    with _lock:
        if _pool is None:
            _pool = FairPool(
                settings.WAREHOUSE_USER_CONCURRENCY,
                settings.SQL_MAX_CONCURRENT_PER_USER,
                settings.SQL_MAX_QUEUED_PER_USER,
            )
        return _pool


def active(user: str) -> int:
    return pool().counts(user)[0]


def submit(identity: str, job: Callable[[], None]) -> Refusal | None:
    return pool().submit(identity or "anonymous", job)


def hand_off(task, work: Callable[..., Any], *args: Any, user: str = "") -> Any:
    """Run `work(*args)` on the users' pool as the result of the Celery `task` (a bound task).

    Inside a worker this raises celery.exceptions.Ignore (the Celery thread is free at once and
    the result is stored later; a refusal is stored at once as {"error", "refused",
    "retry_after"}); called directly (task.request has no id), it runs inline."""
    task_id = task.request.id
    if not task_id or task.request.called_directly:
        return work(*args)
    backend = task.backend
    expires = task.request.expires
    name = task.name

    def job() -> None:
        started = time.monotonic()
        if _expired(expires):
            backend.store_result(
                task_id,
                {"error": "The query waited too long for the warehouse; run it again."},
                states.SUCCESS,
            )
            return
        try:
            result = work(*args)
        except Exception as exc:  # stored as the task's failure, as Celery would
            log.warning("user query %s failed: %s", task_id, loggable(exc))
            backend.mark_as_failure(task_id, exc)
        else:
            backend.store_result(task_id, result, states.SUCCESS)
            # As Celery's own line for a task, but never with the result (users' data).
            log.info(
                "Task %s[%s] succeeded in %.3fs on the users' pool", name, task_id, time.monotonic() - started
            )

    refusal = submit(user, job)
    if refusal is not None:
        backend.store_result(task_id, refusal.as_error(), states.SUCCESS)
    raise Ignore()


def _expired(expires: Any) -> bool:
    if not expires:
        return False
    when = expires if isinstance(expires, datetime) else datetime.fromisoformat(str(expires))
    if timezone.is_naive(when):
        when = timezone.make_aware(when, UTC)  # django.utils.timezone.utc is gone since Django 5
    return timezone.now() > when
