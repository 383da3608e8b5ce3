"""The management API itself: the NinjaAPI object the resource modules register their operations
on, its key authentication, and every error as an RFC 9457 problem detail."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as RequestValidationError
from ninja.security import HttpBearer

from console import roles, warehouse_client
from console.access.api import idempotency, keys, ratelimit
from console.access.api.auth import signed_in_or_key
from console.access.api.models import ApiKey
from console.access.api.problems import problem


class Refused(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class ManageKey(HttpBearer):
    """A manage API key: `Authorization: Bearer shoal_…`."""

    scope: str | None = ApiKey.Scope.MANAGE

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey:
        try:
            api_key = keys.authenticate(token)
        except keys.KeyRefused as exc:
            raise Refused(401, str(exc)) from None
        if self.scope == ApiKey.Scope.MANAGE and api_key.scope != ApiKey.Scope.MANAGE:
            raise Refused(403, f"The API key {api_key.name} is a query key; this needs a manage key.")
        wait = ratelimit.retry_after(api_key.pk)
        if wait is not None:
            raise Refused(
                429, f"Too many requests with {api_key.name}; retry in {wait} s.", {"Retry-After": str(wait)}
            )
        request.api_key = api_key
        return api_key


class AnyKey(ManageKey):
    """Any API key (query or manage): `Authorization: Bearer shoal_…`."""

    scope = None


class ShoalApi(NinjaAPI):
    def get_openapi_operation_id(self, operation) -> str:
        # Operation ids are part of the published document: they stay what they were when every
        # operation lived in one module, whichever module of this package defines it now.
        return "console_api_manage_" + operation.view_func.__name__


api = ShoalApi(
    title="Shoal API",
    version="1",
    # Markdown: the header in a code span, so that `<key>` is shown rather than read as a tag.
    description="Manage Data Pools and Materialized Views with a manage API key. Queries: "
    "`POST /api/v1/sql` with any API key (query or manage), and ClickHouse clients at `/clickhouse` "
    "(docs/api.md). Authenticate with `Authorization: Bearer <key>`.",
    auth=ManageKey(),
    urls_namespace="manage",
    docs_url="/docs",
    openapi_url="/openapi.json",
    docs_decorator=signed_in_or_key,  # the reference: signed-in users and API keys only
)


def require(request: HttpRequest, role: str) -> None:
    if not request.api_key.has_role(role):
        raise Refused(403, f"This needs a key with the {role} role ({roles.DESCRIPTIONS[role]}).")


# --- errors as problem details -----------------------------------------------------------------


@api.exception_handler(Refused)
def _refused(request, exc: Refused):
    return problem(exc.status, str(exc), headers=exc.headers)


@api.exception_handler(AuthenticationError)
def _no_key(request, exc):
    match = request.resolver_match
    any_key = match is not None and getattr(match.func, "shoal_api_scope", "") == "query"
    needed = "an API key (query or manage)" if any_key else "a manage API key"
    return problem(
        401, f"This needs {needed}: Authorization: Bearer <key>.", headers={"WWW-Authenticate": "Bearer"}
    )


@api.exception_handler(ValidationError)
def _invalid(request, exc: ValidationError):
    errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
    detail = " ".join(m for messages in errors.values() for m in messages)
    return problem(422, detail, title="Invalid request", errors=errors)


@api.exception_handler(RequestValidationError)
def _malformed(request, exc: RequestValidationError):
    errors = [{"loc": [str(p) for p in e.get("loc", [])], "msg": e.get("msg", "")} for e in exc.errors]
    detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors)
    return problem(
        422, detail or "The request does not match the schema.", title="Invalid request", errors=errors
    )


@api.exception_handler(Http404)
def _not_found(request, exc):
    return problem(404, str(exc) or "Not found.")


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    return problem(exc.status_code, str(exc))


@api.exception_handler(idempotency.IdempotencyConflict)
def _idempotency(request, exc: idempotency.IdempotencyConflict):
    return problem(exc.status, str(exc))


@api.exception_handler(warehouse_client.WarehouseUnavailable)
def _unavailable(request, exc):
    return problem(503, str(exc), headers={"Retry-After": "5"})


class Problem(Schema):
    type: str = "about:blank"
    title: str
    status: int
    detail: str


ERRORS = {401: Problem, 403: Problem, 404: Problem, 409: Problem, 422: Problem, 429: Problem, 503: Problem}


class Accepted(Schema):
    name: str
    status: str
