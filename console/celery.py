"""The Celery application. Queues: `warehouse` (the only processes that open the warehouse) and
`default` (AWS calls and bookkeeping)."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import Any, overload

import celery
from celery import Celery, Signature
from celery.app import trace
from celery.contrib.django.task import DjangoTask
from celery.worker.consumer import Consumer as CeleryConsumer
from django.db import transaction

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

log = logging.getLogger(__name__)

# Called with the broker's error when work could not be queued.
Refused = Callable[[Exception], object]


class Task(DjangoTask):
    """Every Shoal task: Celery's Django task (`delay_on_commit`, `apply_async_on_commit`) with
    the one way Shoal queues work that a transaction has just recorded."""

    def enqueue_on_commit(self, *args, **options) -> None:
        """Queue this task with `args` once the transaction in progress commits (at once outside
        one), fire-and-forget: see the module's `enqueue`."""
        enqueue_on_commit(self.signature(args), **options)

    def enqueue(self, *args, **options) -> bool:
        """Queue this task with `args` now, fire-and-forget: see the module's `enqueue`."""
        return enqueue(self.signature(args), **options)


@overload
def shared_task(fn: Callable[..., Any]) -> Task: ...
@overload
def shared_task(**options: Any) -> Callable[[Callable[..., Any]], Task]: ...
def shared_task(fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Celery's `shared_task` with Shoal's Task as its base, so that a task's `enqueue` and
    `enqueue_on_commit` are what a type checker sees too. Every task is defined with it."""
    if fn is not None:
        return celery.shared_task(base=Task)(fn)
    return celery.shared_task(base=Task, **options)


def enqueue_on_commit(signature: Signature, *, refused: Refused | None = None, **options) -> None:
    """Queue `signature` (a task with its arguments, or a chain of them) once the transaction in
    progress commits (at once outside one): see `enqueue`."""
    transaction.on_commit(functools.partial(enqueue, signature, refused=refused, **options))


def enqueue(signature: Signature, *, refused: Refused | None = None, **options) -> bool:
    """Queue `signature` without retrying the publish; False, logged, if the broker cannot take it,
    after calling `refused` with the broker's error (to record that the work is not queued).

    What is committed is not undone when Redis is down: the work is found again (beat's sweep
    re-queues loads and deletions; a pipeline offers Retry), so a broker outage must neither
    fail the request that recorded it nor hold it while the publish is retried.
    """
    try:
        signature.apply_async(retry=False, **options)
    except Exception as exc:
        log.warning("could not enqueue %s: %s", signature, exc)
        if refused is not None:
            refused(exc)
        return False
    return True


# Seconds between a worker's attempts to reach the broker again after losing it. Celery's own are
# 2, 4, 6 … 30 s, so a worker came back up to 30 s after Redis did; deliveries landed meanwhile
# waited that long to load.
RECONNECT_INTERVALS = {"interval_start": 0.5, "interval_step": 0.5, "interval_max": 1.0}


class Consumer(CeleryConsumer):
    """A worker's consumer that retries the broker every second (CELERY_WORKER_CONSUMER)."""

    def ensure_connected(self, conn):
        conn.ensure_connection = functools.partial(conn.ensure_connection, **RECONNECT_INTERVALS)
        return super().ensure_connected(conn)


app = Celery("shoal", task_cls=Task)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class Queue:
    WAREHOUSE = "warehouse"
    DEFAULT = "default"


SUCCESS_WITHOUT_RESULT = "Task %(name)s[%(id)s] succeeded in %(runtime)ss"


class OmitTaskResults(logging.Filter):
    """Keep task results and arguments out of the worker's log.

    Celery logs "Task … succeeded in …: <return value>" for every task, and Shoal's warehouse
    tasks return users' query results (SQL Console, a view's sample rows, Preview Data). The
    line keeps the task's name, id and run time; the value, and the arguments Celery passes along
    for structured handlers, are dropped here, whatever the task or the handler.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == trace.LOG_SUCCESS and isinstance(record.args, dict):
            record.msg = SUCCESS_WITHOUT_RESULT
            record.args = _without_results(record.args)
        data = getattr(record, "data", None)
        if isinstance(data, dict):
            record.data = _without_results(data)
        return True


def _without_results(context: dict) -> dict:
    return {k: v for k, v in context.items() if k not in {"return_value", "args", "kwargs"}}


logging.getLogger(trace.logger.name).addFilter(OmitTaskResults())
