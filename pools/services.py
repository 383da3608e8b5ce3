"""Operations on Data Pools used by the console, the admin and the commands alike."""

from __future__ import annotations

import time

from django.core.exceptions import ValidationError
from django.db import transaction

from pools import tasks
from pools.firehose_client import FirehoseSender
from pools.models import DataPool, name_validator
from pools.samples import make_records

# Names that would shadow something in SQL or in the warehouse.
RESERVED_NAMES = {"system", "default", "information_schema", "select", "from", "where", "table", "new"}


def validate_pool_name(name: str) -> None:
    name_validator(name)
    if name.lower() in RESERVED_NAMES:
        raise ValidationError(f"{name!r} is reserved; choose another name.")
    if DataPool.objects.filter(name__iexact=name).exists():
        raise ValidationError(f"A Data Pool named {name!r} already exists.")


def create_pool(
    name: str,
    *,
    description: str = "",
    basic_auth_user: str = "",
    basic_auth_password: str = "",
    **table_settings,
) -> DataPool:
    """Create a DynamoDB Data Pool; its warehouse table is created by a warehouse worker."""
    validate_pool_name(name)
    if bool(basic_auth_user) != bool(basic_auth_password):
        raise ValidationError("Give both a Basic Authentication user and password, or neither.")
    pool = DataPool(name=name, description=description, **table_settings)
    if basic_auth_user:
        pool.set_basic_auth(basic_auth_user, basic_auth_password)
    pool.full_clean()
    with transaction.atomic():
        pool.save()
        # If Redis cannot take it now, the loader creates the table on first delivery.
        tasks.warehouse_create_table.enqueue_on_commit(pool.pk)
    return pool


def pool_as_dict(pool: DataPool, *, reveal_key: bool = True) -> dict:
    return {
        "id": pool.pk,
        "name": pool.name,
        "description": pool.description,
        "status": pool.status,
        "endpoint_url": pool.endpoint_url(),
        "access_key": pool.access_key if reveal_key else None,
        "basic_auth_user": pool.basic_auth_user or None,
        "table": {
            "engine": pool.engine,
            "sorting_key": pool.sorting_key,
            "partition_key": pool.partition_key,
            "timestamp_column": pool.timestamp_column,
            "version_column": pool.version_column or None,
        },
        "created_at": pool.created_at.isoformat(),
    }


def delete_pool(pool: DataPool, confirm_name: str) -> None:
    """Start deleting a pool (its table and all its data). The name must be typed to confirm."""
    if confirm_name != pool.name:
        raise ValidationError("Type the pool's name exactly to confirm.")
    tasks.start_deleting(pool)


def send_test_events(pool: DataPool, base_url: str, count: int = 12) -> dict:
    """Post realistic change records to the pool's own endpoint, exactly as Firehose would.

    `base_url` is where this server can reach itself (the address the user's browser used).
    """
    records = make_records(count, seed=int(time.time()))
    sender = FirehoseSender(
        base_url.rstrip("/") + pool.endpoint_path(),
        pool.access_key,
        timeout=30,
        retry_seconds=0,
        source_arn="arn:aws:firehose:us-east-1:000000000000:deliverystream/shoal-test-events",
    )
    with sender:
        result = sender.send(records)
    if not result.ok:
        raise ValidationError(f"The endpoint answered {result.status or 'nothing'}: {result.error}")
    return {"records": result.records, "request_id": result.request_id}
