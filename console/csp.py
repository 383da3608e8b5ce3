"""Content-Security-Policy on every response (Django 5.2 has none built in).

The policy allows scripts, styles, images and requests from Shoal's own origin only: no inline
script or style, no eval. Templates keep behaviour in static/shoal/*.js (data- attributes instead
of onclick=, style=) and htmx runs with its inline indicator style and eval turned off
(`<meta name="htmx-config">` in templates/base.html; the indicator rules are in shoal.css).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"


def policy(directives: dict[str, str]) -> str:
    return "; ".join(f"{name} {value}".strip() for name, value in directives.items())


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self.header = policy(settings.CONTENT_SECURITY_POLICY)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # A view that needs another policy sets its own.
        if self.header and HEADER not in response:
            response[HEADER] = self.header
        return response
