"""A warehouse task that only the test suite registers (tests/settings.py): it runs SQL on the
users' read-only connection WITHOUT console.sql_guard, as if the guard had a gap, so that tests can
show what the sandbox alone still refuses."""

from __future__ import annotations

from celery import shared_task

from console.warehouse import WarehouseError, get_warehouse


@shared_task
def warehouse_unguarded_sql(sql: str, readonly: bool = True) -> dict:
    """readonly=False: the connection that runs DDL, loads and backfills (where a Materialized
    View's SELECT runs)."""
    try:
        return {"rows": get_warehouse().query(sql, readonly=readonly).rows}
    except WarehouseError as exc:
        return {"error": str(exc), "code": exc.code}
