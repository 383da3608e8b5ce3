"""How the web process and commands reach the warehouse: a task on the `warehouse` queue.

A warehouse worker keeps a heartbeat key in Redis, so that a caller learns at once that no worker
is running instead of waiting out its timeout.
"""

from __future__ import annotations

import redis
from celery.exceptions import TimeoutError as CeleryTimeout
from django.conf import settings

HEARTBEAT_KEY = "shoal:warehouse:heartbeat"
HEARTBEAT_TTL = 15


class WarehouseUnavailable(Exception):
    pass


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2)


def worker_alive() -> bool:
    try:
        return bool(redis_client().exists(HEARTBEAT_KEY))
    except redis.RedisError as exc:
        raise WarehouseUnavailable(f"Redis is not reachable at {settings.REDIS_URL}: {exc}") from None


def call(task, *args, timeout: float | None = None):
    """Run a warehouse task and wait for its result, failing clearly when nobody answers."""
    timeout = timeout or settings.WAREHOUSE_TIMEOUT
    if not worker_alive():
        raise WarehouseUnavailable(
            "No warehouse worker is running. Start Shoal with `make run`, or a worker with "
            "`celery -A console worker -Q warehouse --pool threads`."
        )
    result = task.apply_async(args, expires=timeout)
    try:
        return result.get(timeout=timeout, propagate=True)
    except CeleryTimeout:
        result.revoke()
        raise WarehouseUnavailable(
            f"The warehouse worker did not answer within {timeout:g} s (it may be busy); try again."
        ) from None
    finally:
        result.forget()


def submit(task, *args):
    """Start a warehouse task without waiting (for htmx polling); returns its id."""
    if not worker_alive():
        raise WarehouseUnavailable("No warehouse worker is running. Start Shoal with `make run`.")
    return task.apply_async(args, expires=settings.WAREHOUSE_TIMEOUT * 4).id
