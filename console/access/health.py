"""What /readyz checks: the things a web process needs to take deliveries and serve pages.

Each check is cheap and bounded in time (short Redis timeouts, one SELECT 1), so that a load
balancer or systemd can call it every few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import DatabaseError, connection

from console import warehouse_client
from pools.ingest import journal


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return Check("database", False, f"{type(exc).__name__}: {exc}")
    return Check("database", True)


def check_redis() -> Check:
    try:
        _redis().ping()
    except redis.RedisError as exc:
        return Check("redis", False, str(exc))
    return Check("redis", True)


def check_warehouse_worker() -> Check:
    try:
        beating = bool(_redis().exists(warehouse_client.HEARTBEAT_KEY))
    except redis.RedisError as exc:
        return Check("warehouse_worker", False, f"Redis: {exc}")
    return Check("warehouse_worker", beating, "" if beating else "no heartbeat: no warehouse worker runs")


def check_disk() -> Check:
    try:
        free = journal.free_bytes()
    except OSError as exc:
        return Check("disk", False, str(exc))
    minimum = settings.INGEST_MIN_FREE_BYTES
    detail = f"{free // 2**20} MiB free (INGEST_MIN_FREE_BYTES {minimum // 2**20} MiB)"
    return Check("disk", free >= minimum, detail)


def readiness() -> list[Check]:
    return [Check("web", True), check_database(), check_redis(), check_warehouse_worker(), check_disk()]
