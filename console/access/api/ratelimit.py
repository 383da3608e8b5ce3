"""Requests per minute per API key, counted in Redis (shared by every web process)."""

from __future__ import annotations

import time

from django.conf import settings

from console.access.api import channel


def retry_after(key_id: int) -> int | None:
    """Count one request of key `key_id`; None when allowed, else seconds until the next window."""
    limit = settings.API_RATE_LIMIT_PER_MINUTE
    if limit <= 0:
        return None
    now = time.time()
    window = int(now // 60)
    name = f"shoal:api:rate:{key_id}:{window}"
    pipe = channel.client().pipeline()
    pipe.incr(name)
    pipe.expire(name, 120)
    count, _ = pipe.execute()
    if count <= limit:
        return None
    return max(1, int((window + 1) * 60 - now + 0.999))
