"""The request type of views that answer htmx: django-htmx's middleware sets `request.htmx`."""

from __future__ import annotations

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def is_partial(request: HtmxHttpRequest) -> bool:
    """Answer with a page's swappable region rather than the whole page.

    A history restore (back/forward to a page htmx did not cache) needs the whole page.
    """
    return bool(request.htmx) and not request.htmx.history_restore_request
