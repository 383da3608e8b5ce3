"""The Create Data Pool wizard (placeholder until the wizard lands)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse


@login_required
def start(request: HttpRequest) -> HttpResponse:
    raise Http404


@login_required
def step(request: HttpRequest, step: str) -> HttpResponse:
    raise Http404
