"""Errors as RFC 9457 problem details (application/problem+json)."""

from __future__ import annotations

from http import HTTPStatus

from django.http import JsonResponse

CONTENT_TYPE = "application/problem+json"


def problem(status: int, detail: str, *, title: str | None = None, headers: dict | None = None, **extra):
    body = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    response = JsonResponse(body, status=status, content_type=CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response
