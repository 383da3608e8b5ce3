"""The HTTP API under /api/v1/…: Data Pools, deliveries and quarantine, Materialized Views,
the status, retry and tear-down of AWS pipelines (manage keys), and POST /api/v1/sql (any key,
carried out by console.api.sql_api).

django-ninja builds the OpenAPI 3 document (/api/v1/openapi.json) and the browsable docs
(/api/v1/docs, Swagger UI served from ninja's own static files, started by a script file rather
than inline code, so it works offline and under `script-src 'self'`) from these functions and
their pydantic schemas. Each operation calls the services the console and the commands call
(pools.services, pools.quarantine, views_mv.services, pools.aws.pipelines), so validation
messages are the same; errors are RFC 9457 problem details. Authentication: a manage API key
(Bearer), with the rights of its role (editor or admin, console.roles).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, NinjaAPI, Query, Schema, Status
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as RequestValidationError
from ninja.security import HttpBearer

from console import roles, warehouse_client
from console.api import idempotency, keys, ratelimit, sql_api
from console.api.models import ApiKey
from console.api.problems import problem
from pools import quarantine, table_settings
from pools.aws import pipelines
from pools.models import DataPool, Delivery, QuarantinedRecord
from pools.services import create_pool, delete_pool, pool_as_dict
from views_mv import services as mv_services
from views_mv.models import MaterializedView


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


api = NinjaAPI(
    title="Shoal API",
    version="1",
    description="Manage Data Pools and Materialized Views. Queries: POST /api/v1/sql and ClickHouse "
    "clients at /clickhouse (see docs/api.md). Authenticate with a manage API key: "
    "Authorization: Bearer <key>.",
    auth=ManageKey(),
    urls_namespace="manage",
    docs_url="/docs",
    openapi_url="/openapi.json",
)


def _require(request: HttpRequest, role: str) -> None:
    if not request.api_key.has_role(role):
        raise Refused(403, f"This needs a key with the {role} role ({roles.DESCRIPTIONS[role]}).")


# --- errors as problem details -----------------------------------------------------------------


@api.exception_handler(Refused)
def _refused(request, exc: Refused):
    return problem(exc.status, str(exc), headers=exc.headers)


@api.exception_handler(AuthenticationError)
def _no_key(request, exc):
    return problem(
        401,
        "This needs a manage API key: Authorization: Bearer <key>.",
        headers={"WWW-Authenticate": "Bearer"},
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


# --- Data Pools --------------------------------------------------------------------------------


class TableIn(Schema):
    """The Create Data Pool wizard's table questions (pools.table_settings.derive)."""

    mode: Literal["append_only", "mutable"] = "append_only"
    unique: list[str] = Field(default_factory=list, description="Mutable: columns that identify a record.")
    time_column: str | None = Field(None, description="The column you query by time.")
    filters: list[str] = Field(default_factory=list, description="Columns you always filter by.")
    version: str | None = Field(
        None, description="Mutable: a version column; the last change wins otherwise."
    )


class PoolIn(Schema):
    name: str = Field(..., description="Also the table name in SQL.", max_length=63)
    description: str = ""
    basic_auth_user: str = ""
    basic_auth_password: str = ""
    table: TableIn | None = None


class TableOut(Schema):
    engine: str
    sorting_key: str
    partition_key: str
    timestamp_column: str
    version_column: str | None = None


class PoolOut(Schema):
    id: int
    name: str
    description: str
    status: str
    endpoint_url: str
    access_key: str | None = Field(None, description="Shown to admin keys only.")
    basic_auth_user: str | None = None
    table: TableOut
    created_at: str


def _pool_out(request: HttpRequest, pool: DataPool) -> dict:
    return pool_as_dict(pool, reveal_key=request.api_key.has_role(roles.ADMIN))


def _pool(name: str) -> DataPool:
    return get_object_or_404(DataPool.objects.exclude(status=DataPool.Status.DELETING), name=name)


@api.get("/pools", response={200: list[PoolOut], **ERRORS}, tags=["Data Pools"])
def list_pools(request):
    pools = DataPool.objects.exclude(status=DataPool.Status.DELETING).order_by("name")
    return [_pool_out(request, p) for p in pools]


@api.post("/pools", response={201: PoolOut, **ERRORS}, tags=["Data Pools"])
def create_data_pool(request, body: PoolIn):
    """Create a DynamoDB Data Pool (Step 2 of the guide). Send an Idempotency-Key header to retry safely."""
    _require(request, roles.EDITOR)

    def create() -> tuple[int, dict]:
        settings = {}
        if body.table is not None:
            try:
                derived = table_settings.derive(
                    body.table.mode,
                    unique=body.table.unique,
                    time_column=body.table.time_column,
                    filters=body.table.filters,
                    version=body.table.version,
                )
            except table_settings.TableSettingsError as exc:
                raise ValidationError({exc.field or "table": str(exc)}) from None
            settings = derived.pool_fields()
        pool = create_pool(
            body.name,
            description=body.description,
            basic_auth_user=body.basic_auth_user,
            basic_auth_password=body.basic_auth_password,
            **settings,
        )
        return 201, _pool_out(request, pool)

    return Status(*idempotency.once(request, "create_pool", body.dict(), create))


@api.get("/pools/{name}", response={200: PoolOut, **ERRORS}, tags=["Data Pools"])
def get_pool(request, name: str):
    return _pool_out(request, _pool(name))


class Accepted(Schema):
    name: str
    status: str


@api.delete("/pools/{name}", response={202: Accepted, **ERRORS}, tags=["Data Pools"])
def delete_data_pool(request, name: str):
    """Delete the pool's table and all its data (after its Materialized Views are deleted)."""
    _require(request, roles.EDITOR)
    pool = _pool(name)
    delete_pool(pool, pool.name)
    return Status(202, {"name": pool.name, "status": pool.status})


class AccessKey(Schema):
    access_key: str
    rotated_at: datetime


@api.post("/pools/{name}/rotate-key", response={200: AccessKey, **ERRORS}, tags=["Data Pools"])
def rotate_key(request, name: str):
    """A new Firehose access key (admin keys); the old one stops working at once."""
    _require(request, roles.ADMIN)
    pool = _pool(name)
    pool.rotate_access_key()
    return {"access_key": pool.access_key, "rotated_at": pool.access_key_rotated_at}


class PoolStatistics(Schema):
    name: str
    record_count: int
    quarantined_count: int
    last_delivery_at: datetime | None
    disk_bytes: int
    deliveries: dict[str, int]


@api.get("/pools/{name}/statistics", response={200: PoolStatistics, **ERRORS}, tags=["Data Pools"])
def pool_statistics(request, name: str):
    pool = _pool(name)
    counts = dict(pool.deliveries.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    return {
        "name": pool.name,
        "record_count": pool.record_count,
        "quarantined_count": pool.quarantined_count,
        "last_delivery_at": pool.last_delivery_at,
        "disk_bytes": pool.disk_bytes,
        "deliveries": {status: counts.get(status, 0) for status in Delivery.Status.values},
    }


class DeliveryOut(Schema):
    id: int
    request_id: str
    status: str
    received_at: datetime
    record_count: int
    loaded_count: int
    quarantined_count: int
    attempts: int
    error: str


@api.get("/pools/{name}/deliveries", response={200: list[DeliveryOut], **ERRORS}, tags=["Deliveries"])
def list_deliveries(request, name: str, limit: int = Query(50, ge=1, le=1000)):
    pool = _pool(name)
    return list(pool.deliveries.order_by("-received_at", "-id").defer("body")[:limit])


class QuarantinedOut(Schema):
    id: int
    delivery_id: int
    position: int
    reason: str
    data: str = Field(..., description="The record's base64 data, as Firehose sent it.")
    created_at: datetime
    replayed_at: datetime | None


@api.get("/pools/{name}/quarantine", response={200: list[QuarantinedOut], **ERRORS}, tags=["Deliveries"])
def list_quarantine(request, name: str, limit: int = Query(50, ge=1, le=1000), replayed: bool = False):
    pool = _pool(name)
    records = QuarantinedRecord.objects.filter(pool=pool, replayed_at__isnull=not replayed)
    return list(records.order_by("-id")[:limit])


class ReplayIn(Schema):
    ids: list[int] | None = Field(
        None, description="Quarantined records to replay; all not yet replayed if omitted."
    )


class ReplayOut(Schema):
    deliveries: list[DeliveryOut]


@api.post("/pools/{name}/quarantine/replay", response={200: ReplayOut, **ERRORS}, tags=["Deliveries"])
def replay_quarantine(request, name: str, body: ReplayIn):
    """Land the records again as a new delivery, through the same path (a record still invalid comes back)."""
    _require(request, roles.EDITOR)
    pool = _pool(name)
    waiting = QuarantinedRecord.objects.filter(pool=pool, replayed_at__isnull=True)
    if body.ids is not None:
        waiting = waiting.filter(id__in=body.ids)
    return {"deliveries": quarantine.replay(list(waiting.values_list("id", flat=True)))}


# --- Materialized Views ------------------------------------------------------------------------


class ViewIn(Schema):
    """The Materialized View wizard's answers (views_mv.services.create_mv)."""

    name: str = Field(..., max_length=63)
    sql: str = Field(..., description="A SELECT over one Data Pool, e.g. the guide's Step 4.")
    target_pool: str = Field(
        ..., description="A new Data Pool (or an existing view target with the same columns)."
    )
    description: str = ""
    mutable: bool = False
    unique: list[str] = Field(default_factory=list)
    time_column: str | None = None
    filters: list[str] = Field(default_factory=list)
    version: str | None = Field(None, description="A version column, or 'arrival'; default: the change time.")
    deleted: str | None = None
    column_types: dict[str, str] = Field(default_factory=dict, description="Override inferred types.")
    backfill: bool = Field(True, description="Copy the records already in the source pool.")


class BackfillOut(Schema):
    status: str
    rows_total: int
    rows_done: int
    percent: int
    error: str


class ViewOut(Schema):
    id: int
    name: str
    status: str
    status_detail: str
    source_pool: str
    target_pool: str
    engine: str
    sorting_key: str
    partition_key: str
    timestamp_column: str | None
    version_column: str | None
    deleted_column: str | None
    columns: list[list[str]]
    backfill: BackfillOut | None


def _view_out(mv: MaterializedView) -> dict:
    data = mv_services.mv_as_dict(mv)
    data["status_detail"] = mv.status_detail
    backfill = getattr(mv, "backfill", None)
    if backfill is not None:
        data["backfill"].update(percent=backfill.percent, error=backfill.error)
    return data


def _mv(name: str) -> MaterializedView:
    return get_object_or_404(
        MaterializedView.objects.select_related("source_pool", "target_pool").exclude(
            status=MaterializedView.Status.DELETING
        ),
        name=name,
    )


@api.get("/views", response={200: list[ViewOut], **ERRORS}, tags=["Materialized Views"])
def list_views(request):
    views = MaterializedView.objects.select_related("source_pool", "target_pool").exclude(
        status=MaterializedView.Status.DELETING
    )
    return [_view_out(mv) for mv in views.order_by("name")]


@api.post("/views", response={201: ViewOut, **ERRORS}, tags=["Materialized Views"])
def create_view(request, body: ViewIn):
    """Create a Materialized View and its target pool; its status and backfill progress follow on GET."""
    _require(request, roles.EDITOR)

    def create() -> tuple[int, dict]:
        mv = mv_services.create_mv(
            body.name,
            body.sql,
            target_pool=body.target_pool,
            description=body.description,
            mutable=body.mutable,
            unique=body.unique,
            time_column=body.time_column,
            filters=body.filters,
            version=body.version,
            deleted=body.deleted,
            column_types=body.column_types,
            backfill=body.backfill,
        )
        return 201, _view_out(_mv(mv.name))

    return Status(*idempotency.once(request, "create_view", body.dict(), create))


@api.get("/views/{name}", response={200: ViewOut, **ERRORS}, tags=["Materialized Views"])
def get_view(request, name: str):
    return _view_out(_mv(name))


@api.delete("/views/{name}", response={202: Accepted, **ERRORS}, tags=["Materialized Views"])
def delete_view(request, name: str, delete_target: bool = False):
    """Drop the view (and, with delete_target=true, its target pool)."""
    _require(request, roles.EDITOR)
    mv = _mv(name)
    mv_services.delete_mv(mv, delete_target=delete_target)
    return Status(202, {"name": mv.name, "status": MaterializedView.Status.DELETING})


# --- AWS pipelines ----------------------------------------------------------------------------


class StepOut(Schema):
    phase: str
    key: str
    title: str
    state: str
    detail: str
    error: str
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None


class PipelineOut(Schema):
    id: int
    pool: str
    status: str
    phase: str
    table_name: str
    stream_name: str
    firehose_name: str
    bucket_name: str
    connection: str
    region: str
    steps: list[StepOut]


def _pipeline_out(pipeline) -> dict:
    return {
        "id": pipeline.pk,
        "pool": pipeline.pool.name,
        "status": pipeline.status,
        "phase": pipeline.phase,
        "table_name": pipeline.table_name,
        "stream_name": pipeline.stream_name,
        "firehose_name": pipeline.firehose_name,
        "bucket_name": pipeline.bucket_name,
        "connection": pipeline.connection.name,
        "region": pipeline.region,
        "steps": [
            {
                "phase": step.phase,
                "key": step.key,
                "title": step.title,
                "state": step.state,
                "detail": step.detail,
                "error": step.error,
                "attempts": step.attempts,
                "started_at": step.started_at,
                "finished_at": step.finished_at,
            }
            for step in pipelines.phase_steps(pipeline)
        ],
    }


def _get_pipeline(pk: int):
    from pools.aws.models import Pipeline

    return get_object_or_404(Pipeline.objects.select_related("pool", "connection"), pk=pk)


@api.get("/pipelines", response={200: list[PipelineOut], **ERRORS}, tags=["AWS pipelines"])
def list_pipelines(request):
    from pools.aws.models import Pipeline

    return [_pipeline_out(p) for p in Pipeline.objects.select_related("pool", "connection").order_by("pk")]


@api.get("/pipelines/{pk}", response={200: PipelineOut, **ERRORS}, tags=["AWS pipelines"])
def get_pipeline(request, pk: int):
    """A pipeline and the state of each step of its current phase (provision or teardown)."""
    return _pipeline_out(_get_pipeline(pk))


def _resume(pipeline, phase: str) -> dict:
    from pools.aws import errors as aws_errors

    try:
        pipelines.resume(pipeline, phase)
    except aws_errors.AwsError as exc:
        raise Refused(409, str(exc)) from None
    return _pipeline_out(_get_pipeline(pipeline.pk))


@api.post("/pipelines/{pk}/retry", response={202: PipelineOut, **ERRORS}, tags=["AWS pipelines"])
def retry_pipeline(request, pk: int):
    """Resume the current phase from its first unfinished step (admin keys); nothing is created twice."""
    _require(request, roles.ADMIN)
    pipeline = _get_pipeline(pk)
    return Status(202, _resume(pipeline, pipeline.phase))


class TeardownIn(Schema):
    keep_bucket: bool = Field(False, description="Keep the S3 bucket of failed deliveries.")


@api.post("/pipelines/{pk}/teardown", response={202: PipelineOut, **ERRORS}, tags=["AWS pipelines"])
def teardown_pipeline(request, pk: int, body: TeardownIn):
    """Remove what Shoal created for this pipeline (admin keys), as the console's Tear down does."""
    from pools.aws.models import Pipeline

    _require(request, roles.ADMIN)
    pipeline = _get_pipeline(pk)
    Pipeline.objects.filter(pk=pk).update(keep_bucket=body.keep_bucket)
    return Status(202, _resume(pipeline, "teardown"))


# --- queries ----------------------------------------------------------------------------------


class SqlIn(Schema):
    sql: str = Field(..., min_length=1, description="One read-only statement over the Data Pools.")
    parameters: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Values of the statement's {name:Type} parameters."
    )
    format: Literal[("JSON", *sql_api.STREAMED)] = Field(  # type: ignore[valid-type]
        "JSON", description="JSON (below), or the rows streamed in this ClickHouse format."
    )


class SqlStatistics(Schema):
    rows: int
    rows_read: int
    bytes_read: int
    elapsed_ms: float


class SqlOut(Schema):
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    truncated: bool = Field(..., description="The rows were cut to SQL_MAX_RESULT_ROWS.")
    statistics: SqlStatistics


@api.post(
    "/sql",
    auth=AnyKey(),
    response={200: SqlOut, 400: Problem, **ERRORS},
    tags=["Query"],
)
def run_sql(request, body: SqlIn):
    """Run a query with any key (a query key reads its pools only), through the SQL Console's guard
    and limits. Every answer carries X-Shoal-Rows-Read, X-Shoal-Bytes-Read, X-Shoal-Elapsed-Ms."""
    params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.parameters.items()}
    return sql_api.answer(request, body.sql, params, body.format)


def urls():
    """The API's URL patterns, marked for Shoal's middleware and its roles test: operations take
    a key (not a session: a manage key, any key for /sql), the document and the docs are public."""
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        callback = pattern.callback
        callback.login_required = False
        name = pattern.name or ""
        if name in ("openapi-json", "openapi-view", "api-root"):
            callback.shoal_api_scope = "public"
        else:
            callback.shoal_api_scope = "query" if name == "run_sql" else "manage"
    return patterns, app_name, namespace
