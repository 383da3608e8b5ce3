"""The Celery application. Queues: `warehouse` (the only processes that open the warehouse) and
`default` (AWS calls and bookkeeping)."""

from __future__ import annotations

import logging
import os

from celery import Celery
from celery.app import trace

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("shoal")
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
