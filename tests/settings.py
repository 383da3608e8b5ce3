"""Settings for the test suite: its own data folder and Redis database, so that `make test` can
run beside a running `make run`. Worker processes started by the tests use this module too.

Two test runs at once (two engineers on one machine) need different SHOAL_DATA_DIR and REDIS_URL:
    SHOAL_DATA_DIR=var/test-b REDIS_URL=redis://127.0.0.1:6379/11 .venv/bin/python -m pytest
"""

import os
from pathlib import Path

_root = Path(__file__).resolve().parent.parent
os.environ.setdefault("SHOAL_DATA_DIR", str(_root / "var" / "test"))
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("SECRET_KEY", "test-secret-key-that-is-long-enough-for-django-0123456789")
os.environ.setdefault("SHOAL_LOAD_STALE_SECONDS", "3")
os.environ.setdefault("WAREHOUSE_TIMEOUT", "30")
os.environ.setdefault("AWS_ALLOW_EMULATOR", "true")  # the AWS tests talk to a moto server
os.environ.setdefault("MV_BACKFILL_CHUNK_ROWS", "300")  # many chunks even for small test pools

from console.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Playwright's sync API runs an event loop in the test thread; the ORM calls the tests make there
# are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# tests/probe_tasks.py: SQL straight to the warehouse worker's engine, for the sandbox's tests.
CELERY_IMPORTS = ["tests.probe_tasks"]
CELERY_TASK_ROUTES = {"tests.probe_tasks.*": {"queue": "warehouse"}, **CELERY_TASK_ROUTES}  # noqa: F405
