"""Warehouse tasks shared by the console: running a user's SQL."""

from __future__ import annotations

from django.conf import settings

from console import json_paths, sql_guard, user_queries
from console.celery import shared_task
from console.warehouse import Warehouse, WarehouseError, get_warehouse

TIMEOUT_EXCEEDED = 159
MEMORY_LIMIT_EXCEEDED = 241


@shared_task(bind=True)
def run_sql(self, sql: str, user: str = "") -> dict:
    """Run a user's read-only SQL (SQL Console, `sql` command); returns the result, or
    {"error", "code"} as ClickHouse or the guard reported it ("position" too when known).

    It runs on the users' pool (console/user_queries.py), not on the worker's Celery threads,
    which load deliveries; `user` is whose query it is, for the per-user limit."""
    return user_queries.hand_off(self, _run_sql, sql, user=user)


def _run_sql(sql: str) -> dict:
    return execute(get_warehouse(), sql, max_rows=settings.SQL_MAX_RESULT_ROWS)


def execute(warehouse: Warehouse, sql: str, *, max_rows: int) -> dict:
    """Check `sql` with console.sql_guard, run it on the read-only connection (whose time and
    size limits are fixed when it opens) and cut the result to max_rows.

    What runs is the checked text with JSON paths that name DynamoDB attributes made readable
    (console.json_paths, a pure rewrite applied after the check); the rewritten text is checked
    again, so the statement that runs is always one the guard passed."""
    effective = sql
    try:
        sql_guard.check(warehouse, sql)
        effective = json_paths.effective_sql(warehouse, sql)
        if effective != sql:
            sql_guard.check(warehouse, effective)
        result = warehouse.query(effective, readonly=True)
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
        # A position in the rewritten text would point at the wrong place in the user's.
        position = sql_guard.error_position(str(exc), sql) if effective == sql else None
        if position is not None:
            error["position"] = position
        return error
    out = result.as_dict()
    # result_overflow_mode=break stops at a block boundary, past the limit: cut here.
    out["truncated"] = len(result.rows) > max_rows
    out["rows"] = result.rows[:max_rows]
    return out
