"""Users' queries run on a bounded pool of their own inside the warehouse worker.

The warehouse worker's Celery threads load deliveries and run backfills: that work has a freshness
target. A user's query (SQL Console, Preview Data, a Replica check) can take the whole execution
time limit, so four of them used to occupy every Celery thread and hold loading back for as long.
Here a user's task only hands its work to this pool and returns at once; the pool stores the
work's return value as the task's result when it is done, so callers wait on the task as before
(AsyncResult, warehouse_client.call).

- at most WAREHOUSE_USER_CONCURRENCY users' queries run at once (the rest wait in the pool's queue);
- one user may have SQL_MAX_CONCURRENT_PER_USER queued or running; one more is answered at once
  with an error saying so;
- a query whose caller has given up (the task's `expires`) is not started.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from celery import states
from celery.exceptions import Ignore
from django.conf import settings
from django.utils import timezone

from console.warehouse import loggable

log = logging.getLogger(__name__)

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_active: Counter[str] = Counter()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=settings.WAREHOUSE_USER_CONCURRENCY, thread_name_prefix="user-query"
            )
        return _pool


def active(user: str) -> int:
    with _lock:
        return _active[user]


def hand_off(task, work: Callable[..., Any], *args: Any, user: str = "") -> Any:
    """Run `work(*args)` on the users' pool as the result of the Celery `task` (a bound task).

    Inside a worker this raises celery.exceptions.Ignore (the Celery thread is free at once and
    the result is stored later); called directly (task.request has no id), it runs inline.
    """
    task_id = task.request.id
    if not task_id or task.request.called_directly:
        return work(*args)
    backend = task.backend
    limit = settings.SQL_MAX_CONCURRENT_PER_USER
    with _lock:
        if user and _active[user] >= limit:
            refused = True
        else:
            refused = False
            _active[user] += 1
    if refused:
        backend.store_result(
            task_id,
            {
                "error": f"You already have {limit} queries running (SQL_MAX_CONCURRENT_PER_USER); "
                "wait for one to finish and run this one again.",
                "code": None,
            },
            states.SUCCESS,
        )
        raise Ignore()
    expires = task.request.expires
    name = task.name

    def job() -> None:
        started = time.monotonic()
        try:
            if _expired(expires):
                backend.store_result(
                    task_id,
                    {"error": "The query waited too long for the warehouse; run it again."},
                    states.SUCCESS,
                )
                return
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
        finally:
            with _lock:
                _active[user] -= 1
                if _active[user] <= 0:
                    del _active[user]

    _executor().submit(job)
    raise Ignore()


def _expired(expires: Any) -> bool:
    if not expires:
        return False
    when = expires if isinstance(expires, datetime) else datetime.fromisoformat(str(expires))
    if timezone.is_naive(when):
        when = timezone.make_aware(when, UTC)  # django.utils.timezone.utc is gone since Django 5
    return timezone.now() > when
