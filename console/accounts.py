"""Sign-in throttling helpers for django-axes (configured in console/settings.py)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def client_address(request: HttpRequest) -> str:
    """The address a sign-in comes from, as far as it can be trusted.

    X-Forwarded-For is written by whoever sends the request, so it counts only when
    TRUST_X_FORWARDED_FOR says a proxy in front appends to it; then the right-most entry is the
    address that proxy saw (anything left of it may be the client's own invention).
    """
    if getattr(settings, "TRUST_X_FORWARDED_FOR", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return request.META.get("REMOTE_ADDR", "")


def describe(duration: timedelta) -> str:
    """'15 minutes', '1 hour', '90 seconds': how long a lock-out lasts, for people."""
    seconds = int(duration.total_seconds())
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """The page a locked-out sign-in gets (429), saying why and for how long."""
    context = {
        "duration": describe(settings.AXES_COOLOFF_TIME),
        "limit": settings.AXES_FAILURE_LIMIT,
        "admin": request.path.startswith("/admin/"),
    }
    return render(request, "registration/locked_out.html", context, status=429)
