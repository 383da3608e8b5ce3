"""The Celery application. Queues: `warehouse` (the only processes that open the warehouse) and
`default` (AWS calls and bookkeeping)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("shoal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class Queue:
    WAREHOUSE = "warehouse"
    DEFAULT = "default"
