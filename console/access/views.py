from __future__ import annotations

import hmac

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.password_validation import validate_password
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from console import roles, setup_token
from console.access import health
from console.access import metrics as shoal_metrics


class FirstAdminForm(forms.Form):
    username = forms.CharField(max_length=150, initial="admin")
    email = forms.EmailField(required=False)
    password = forms.CharField(widget=forms.PasswordInput)
    password2 = forms.CharField(widget=forms.PasswordInput, label="Password (again)")

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("password") != data.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        elif data.get("password"):
            try:
                validate_password(data["password"], get_user_model()(username=data.get("username", "")))
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return data


@login_not_required
def first_admin(request: HttpRequest, token: str) -> HttpResponse:
    # Without a valid token, or once any user exists, the page does not exist.
    if not setup_token.check_token(token) or not setup_token.needs_setup():
        raise Http404
    form = FirstAdminForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = get_user_model().objects.create_superuser(
            form.cleaned_data["username"], form.cleaned_data["email"], form.cleaned_data["password"]
        )
        roles.set_role(user, roles.ADMIN)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("pools:list")
    return render(request, "console/first_admin.html", {"form": form})


# The operator's URLs are public by design (probes and Prometheus do not log in); /metrics is
# protected by its own token instead.


@login_not_required
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: this process answers. Depends on nothing else, so that a database or Redis
    outage does not get healthy web processes restarted."""
    return JsonResponse({"ok": True})


@login_not_required
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: web, database, Redis, a warehouse worker's heartbeat, free disk. 503 if any fails."""
    checks = health.readiness()
    ready = all(c.ok for c in checks)
    doc = {
        "ready": ready,
        "checks": {c.name: {"ok": c.ok, **({"detail": c.detail} if c.detail else {})} for c in checks},
    }
    return JsonResponse(doc, status=200 if ready else 503)


@login_not_required
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics, with `Authorization: Bearer <METRICS_TOKEN>`; off without a token."""
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("set METRICS_TOKEN to turn /metrics on")
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        response = HttpResponse("a valid bearer token (METRICS_TOKEN) is required\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="shoal-metrics"'
        return response
    return HttpResponse(shoal_metrics.render(), content_type=CONTENT_TYPE_LATEST)


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """403 in the console's layout: which role the page needs, the user's own, and who can grant
    it (the admins); a user without any role yet is told so rather than shown an error."""
    needed = next((r for r in roles.ROLES if f"the {r} role" in str(exception or "")), None)
    admins = [
        u.get_username()
        for u in get_user_model().objects.filter(is_active=True).order_by("username")
        if roles.has_role(u, roles.ADMIN)
    ][:5]
    context = {
        "needed": needed,
        "needed_description": roles.DESCRIPTIONS.get(needed or "", ""),
        "own_role": roles.role_of(request.user),
        "admins": admins,
        "message": str(exception or ""),
    }
    return render(request, "403.html", context, status=403)
