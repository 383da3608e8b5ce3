"""Warehouse tasks shared by the console: running a user's SQL."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from console.warehouse import WarehouseError, get_warehouse


@shared_task
def run_sql(sql: str) -> dict:
    """Run read-only SQL; returns the result, or {"error": …} as ClickHouse reported it."""
    try:
        result = get_warehouse().query(sql, readonly=True)
    except WarehouseError as exc:
        return {"error": str(exc), "code": exc.code}
    out = result.as_dict()
    limit = settings.SQL_MAX_RESULT_ROWS
    out["truncated"] = len(result.rows) > limit
    out["rows"] = result.rows[:limit]
    return out
