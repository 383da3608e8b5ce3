"""API-key authentication for views: a decorator that takes the place of sign-in and roles."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest
from django.views.decorators.csrf import csrf_exempt

from console import roles
from console.access.api import keys, ratelimit
from console.access.api.models import ApiKey
from console.access.api.problems import problem

QUERY = "query"  # any active key may query (a query key only its pools)
MANAGE = ApiKey.Scope.MANAGE


def api_key_required(scope: str = QUERY, *, refuse: Callable | None = None) -> Callable:
    """View decorator: the request must carry an active API key of `scope` (manage keys may also
    query), within its rate limit; the key is request.api_key. Session sign-in does not count, so
    the view is exempt from LoginRequiredMiddleware and, having no cookie auth, from CSRF.
    `refuse(status, message, code, headers)` shapes the refusal (problem details by default)."""

    def default_refuse(status: int, message: str, code: int | None, headers: dict):
        return problem(status, message, headers=headers)

    refuse_with = refuse or default_refuse

    def decorator(view):
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs):
            name, key = keys.credentials(request)
            if key is None and hasattr(view, "credentials_from"):
                name, key = view.credentials_from(request)
            try:
                api_key = keys.authenticate(key, name=name)
            except keys.KeyRefused as exc:
                return refuse_with(401, str(exc), 516, {"WWW-Authenticate": 'Bearer realm="shoal"'})
            if scope == MANAGE and api_key.scope != MANAGE:
                return refuse_with(
                    403, f"The API key {api_key.name} is a query key; this needs a manage key.", 497, {}
                )
            wait = ratelimit.retry_after(api_key.pk)
            if wait is not None:
                return refuse_with(
                    429,
                    f"The API key {api_key.name} made too many requests; try again in {wait} s.",
                    202,
                    {"Retry-After": str(wait)},
                )
            request.api_key = api_key
            return view(request, *args, **kwargs)

        wrapped.shoal_api_scope = scope
        return csrf_exempt(login_not_required(wrapped))

    return decorator


def signed_in_or_key(view):
    """View decorator for the API's reference (/api/v1/docs, /api/v1/openapi.json): a signed-in
    user with a role, or any active API key. Anyone else is sent to sign in (a browser) or answered
    401: the document maps every operation, which is nobody's business before signing in."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        if roles.has_role(request.user, roles.VIEWER):
            return view(request, *args, **kwargs)
        name, key = keys.credentials(request)
        if key is None and "text/html" in request.headers.get("Accept", ""):
            return redirect_to_login(request.get_full_path())
        try:
            keys.authenticate(key, name=name)
        except keys.KeyRefused as exc:
            message = f"{exc} Sign in, or send an API key: Authorization: Bearer <key>."
            return problem(401, message, headers={"WWW-Authenticate": 'Bearer realm="shoal"'})
        return view(request, *args, **kwargs)

    wrapped.shoal_signed_in_or_key = True
    return login_not_required(wrapped)
