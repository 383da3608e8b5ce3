"""While Redis (the broker, rate limits, idempotency, sessions) is down, every API answer is a
503 that says to come back (problem+json, or ClickHouse's error shape under /clickhouse) with
Retry-After, never a 500 page: the ingest endpoint keeps landing meanwhile, and nothing a client
sent was half done (a request that needs Redis fails before it changes anything it cannot finish).
"""

from __future__ import annotations

import logging

import redis
from django.http import HttpRequest, HttpResponse
from kombu.exceptions import OperationalError

from console.access.api import clickhouse_http
from console.access.api.problems import problem

log = logging.getLogger(__name__)

OUTAGES = (redis.exceptions.RedisError, OperationalError)
RETRY_AFTER = "5"
API_PREFIXES = ("/api/", "/clickhouse")
MESSAGE = "Shoal cannot reach Redis right now; retry shortly."
NETWORK_ERROR = 210  # ClickHouse's code for a connection that failed


class OutageMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not isinstance(exc, OUTAGES) or not request.path.startswith(API_PREFIXES):
            return None
        log.warning("API answered 503: Redis is unreachable (%s)", type(exc).__name__, exc_info=exc)
        if request.path.startswith("/clickhouse"):
            return clickhouse_http.error(503, MESSAGE, NETWORK_ERROR, {"Retry-After": RETRY_AFTER})
        return problem(503, MESSAGE, headers={"Retry-After": RETRY_AFTER})
