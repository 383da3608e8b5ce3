"""Warehouse tasks shared by the console: running a user's SQL."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from console import sql_guard
from console.warehouse import Warehouse, WarehouseError, get_warehouse

TIMEOUT_EXCEEDED = 159
MEMORY_LIMIT_EXCEEDED = 241


@shared_task
def run_sql(sql: str) -> dict:
    """Run a user's read-only SQL (SQL Console, `sql` command); returns the result, or
    {"error", "code"} as ClickHouse or the guard reported it ("position" too when known)."""
    return execute(get_warehouse(), sql, max_rows=settings.SQL_MAX_RESULT_ROWS)


def execute(warehouse: Warehouse, sql: str, *, max_rows: int) -> dict:
    """Check `sql` with console.sql_guard, run it on the read-only connection (whose time and
    size limits are fixed when it opens) and cut the result to max_rows."""
    try:
        sql_guard.check(warehouse, sql)
        result = warehouse.query(sql, readonly=True)
    except WarehouseError as exc:
        error = {"error": str(exc), "code": exc.code}
        if exc.code == TIMEOUT_EXCEEDED:
            error["error"] += (
                "\nThe SQL Console stops a query at its time limit (SQL_MAX_EXECUTION_SECONDS); "
                "narrow it with WHERE or LIMIT."
            )
        elif exc.code == MEMORY_LIMIT_EXCEEDED:
            error["error"] += (
                "\nThe SQL Console stops a query at its memory limit (SQL_MAX_MEMORY_BYTES); "
                "aggregate less at once, or narrow it with WHERE."
            )
        position = sql_guard.error_position(str(exc), sql)
        if position is not None:
            error["position"] = position
        return error
    out = result.as_dict()
    # result_overflow_mode=break stops at a block boundary, past the limit: cut here.
    out["truncated"] = len(result.rows) > max_rows
    out["rows"] = result.rows[:max_rows]
    return out
