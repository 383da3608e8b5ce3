"""Data Pools, their deliveries and quarantine: /api/v1/pools/…, through the services the console
and the commands use (pools.services, pools.quarantine), so validation messages are the same."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema, Status

from console import roles
from console.access.api import idempotency
from console.access.api.manage.api import ERRORS, Accepted, require
from pools import quarantine, table_settings
from pools.models import DataPool, Delivery, QuarantinedRecord
from pools.services import create_pool, delete_pool, pool_as_dict

router = Router()


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


@router.get("/pools", response={200: list[PoolOut], **ERRORS}, tags=["Data Pools"])
def list_pools(request):
    pools = DataPool.objects.exclude(status=DataPool.Status.DELETING).order_by("name")
    return [_pool_out(request, p) for p in pools]


@router.post("/pools", response={201: PoolOut, **ERRORS}, tags=["Data Pools"])
def create_data_pool(request, body: PoolIn):
    """Create a DynamoDB Data Pool (Step 2 of the guide). Send an Idempotency-Key header to retry safely."""
    require(request, roles.EDITOR)

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


@router.get("/pools/{name}", response={200: PoolOut, **ERRORS}, tags=["Data Pools"])
def get_pool(request, name: str):
    return _pool_out(request, _pool(name))


@router.delete("/pools/{name}", response={202: Accepted, **ERRORS}, tags=["Data Pools"])
def delete_data_pool(request, name: str):
    """Delete the pool's table and all its data (after its Materialized Views are deleted)."""
    require(request, roles.EDITOR)
    pool = _pool(name)
    delete_pool(pool, pool.name)
    return Status(202, {"name": pool.name, "status": pool.status})


class AccessKey(Schema):
    access_key: str
    rotated_at: datetime


@router.post("/pools/{name}/rotate-key", response={200: AccessKey, **ERRORS}, tags=["Data Pools"])
def rotate_key(request, name: str):
    """A new Firehose access key (admin keys); the old one stops working at once."""
    require(request, roles.ADMIN)
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


@router.get("/pools/{name}/statistics", response={200: PoolStatistics, **ERRORS}, tags=["Data Pools"])
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


@router.get("/pools/{name}/deliveries", response={200: list[DeliveryOut], **ERRORS}, tags=["Deliveries"])
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


@router.get("/pools/{name}/quarantine", response={200: list[QuarantinedOut], **ERRORS}, tags=["Deliveries"])
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


@router.post("/pools/{name}/quarantine/replay", response={200: ReplayOut, **ERRORS}, tags=["Deliveries"])
def replay_quarantine(request, name: str, body: ReplayIn):
    """Land the records again as a new delivery, through the same path (a record still invalid comes back)."""
    require(request, roles.EDITOR)
    pool = _pool(name)
    waiting = QuarantinedRecord.objects.filter(pool=pool, replayed_at__isnull=True)
    if body.ids is not None:
        waiting = waiting.filter(id__in=body.ids)
    return {"deliveries": quarantine.replay(list(waiting.values_list("id", flat=True)))}
