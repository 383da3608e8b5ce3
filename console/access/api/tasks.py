"""The warehouse task behind /api/v1/sql and /clickhouse (runs on the `warehouse` queue)."""

from __future__ import annotations

from console import sql_guard
from console.access.api import channel
from console.celery import shared_task
from console.warehouse import WarehouseError, get_warehouse


@shared_task(ignore_result=True, acks_late=False)
def api_query(
    reply_to: str,
    sql: str,
    fmt: str,
    *,
    params: dict[str, str] | None = None,
    pools: list[str] | None = None,
    max_rows: int,
    where: str,
    output: dict[str, str] | None = None,
) -> None:
    """Check `sql` with the SQL Console's guard (limited to `pools` when given), run it on a
    read-only connection and send the answer, in ClickHouse format `fmt`, to channel `reply_to`."""
    warehouse = get_warehouse()
    try:
        sql_guard.check(warehouse, sql, where=where, pools=pools, params=params)
        result = warehouse.query_format(sql, fmt, max_rows=max_rows, params=params, output=output)
    except WarehouseError as exc:
        channel.publish(reply_to, {"error": str(exc), "code": exc.code})
        return
    header = {
        "rows_read": result.rows_read,
        "bytes_read": result.bytes_read,
        "elapsed_ms": round(result.elapsed_ms, 2),
        "bytes": len(result.data),
    }
    channel.publish(reply_to, header, result.data)
