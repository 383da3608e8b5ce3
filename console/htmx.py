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


def region(request: HtmxHttpRequest) -> str | None:
    """Which region of its page an htmx request asks for: the `part` it names ('' for the page's
    main region), or None for the whole page. Shoal's one rule: a view renders the region's
    fragment (`templates/<app>/_<region>.html`, which the page includes) for a partial request,
    the page otherwise; an action (POST) answers its region for htmx and redirects otherwise."""
    return request.GET.get("part", "") if is_partial(request) else None
