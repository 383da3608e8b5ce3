"""Materialized Views: /api/v1/views/…, through views_mv.services as the wizard and `create_mv`."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from ninja import Field, Router, Schema, Status

from console import roles
from console.access.api import idempotency
from console.access.api.manage.api import ERRORS, Accepted, require
from views_mv import services as mv_services
from views_mv.models import MaterializedView

router = Router()


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
    column_types: dict[str, str] = Field(
        default_factory=dict, description="Store columns as other types than the query declares."
    )
    accept_type_changes: bool = Field(
        False, description="Accept column_types that change values (e.g. NULL stored as 0)."
    )
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


@router.get("/views", response={200: list[ViewOut], **ERRORS}, tags=["Materialized Views"])
def list_views(request):
    views = MaterializedView.objects.select_related("source_pool", "target_pool").exclude(
        status=MaterializedView.Status.DELETING
    )
    return [_view_out(mv) for mv in views.order_by("name")]


@router.post("/views", response={201: ViewOut, **ERRORS}, tags=["Materialized Views"])
def create_view(request, body: ViewIn):
    """Create a Materialized View and its target pool; its status and backfill progress follow on GET."""
    require(request, roles.EDITOR)

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
            accept_type_changes=body.accept_type_changes,
        )
        return 201, _view_out(_mv(mv.name))

    return Status(*idempotency.once(request, "create_view", body.dict(), create))


@router.get("/views/{name}", response={200: ViewOut, **ERRORS}, tags=["Materialized Views"])
def get_view(request, name: str):
    return _view_out(_mv(name))


@router.delete("/views/{name}", response={202: Accepted, **ERRORS}, tags=["Materialized Views"])
def delete_view(request, name: str, delete_target: bool = False):
    """Drop the view (and, with delete_target=true, its target pool)."""
    require(request, roles.EDITOR)
    mv = _mv(name)
    mv_services.delete_mv(mv, delete_target=delete_target)
    return Status(202, {"name": mv.name, "status": MaterializedView.Status.DELETING})
