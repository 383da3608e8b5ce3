"""Whether the process that holds a piece of work is still alive.

A process that claims work (a warehouse worker claiming a load batch) names itself with `me()`:
its host, pid and a nonce of this start. While it runs it beats: `beat()` keeps a key in Redis that
lives HEARTBEAT_TTL seconds. Its work is known to be orphaned, and can be taken again at once
rather than after a timeout, when `dead()` says so: on its own host, its pid is gone (the
supervisor restarts a killed worker within seconds; a check of the pid costs nothing); on any host,
its heartbeat has stopped. A process that does not beat (a command, a test calling the loader)
claims with no name, and only the claim's age frees its work.
"""

from __future__ import annotations

import os
import socket
import uuid

import redis
from django.conf import settings

HEARTBEAT_TTL = 15  # seconds; beats come every third of it
_KEY = "shoal:liveness:{}"
_me = {"name": ""}


def me() -> str:
    """This process's name if it beats, else ''."""
    return _me["name"]


def _name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def beat(client: redis.Redis) -> None:
    """Say this process is alive for HEARTBEAT_TTL seconds; from the first beat on, `me()` names it."""
    if not _me["name"] or _me["name"].rsplit(":", 2)[1] != str(os.getpid()):  # a forked child is new
        _me["name"] = _name()
    client.set(_KEY.format(_me["name"]), 1, ex=HEARTBEAT_TTL)


def dead(name: str, client: redis.Redis | None = None) -> bool:
    """Whether the process called `name` is known to have stopped (False when it cannot be told)."""
    try:
        host, pid, _nonce = name.rsplit(":", 2)
    except ValueError:
        return False
    if host == socket.gethostname():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, ValueError):
            pass  # another user's process (or a sandbox that may not signal): alive as far as we know
    try:
        client = client or redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
        )
        return not client.exists(_KEY.format(name))
    except redis.RedisError:
        return False  # Redis cannot tell: wait for the claim's age
