"""POST /api/v1/sql: a statement and its parameters in, JSON (or a streamed format) out.

The operation is declared in console/access/api/manage.py (so that it is in the OpenAPI document); this
is what it does once the key and the body are checked."""

from __future__ import annotations

import json

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from console import admission, sql_guard, warehouse_client
from console.access.api import channel, query
from console.access.api.problems import problem
from console.access.api.tasks import RESULT_TOO_LARGE

# What /api/v1/sql streams besides its own JSON answer (names as ClickHouse spells them).
STREAMED = (
    "CSV",
    "CSVWithNames",
    "TSV",
    "TSVWithNames",
    "JSONEachRow",
    "JSONCompactEachRow",
    "Parquet",
    "Arrow",
)
REFUSED_CODES = (sql_guard.ACCESS_DENIED, sql_guard.READONLY)


def answer(request: HttpRequest, statement: str, params: dict[str, str], fmt: str) -> HttpResponse:
    """Run `statement` for request.api_key and answer: JSON (columns, types, rows, statistics) or
    the rows streamed in `fmt`; problem details when it is refused or fails."""
    as_json = fmt == "JSON"
    max_rows = settings.SQL_MAX_RESULT_ROWS if as_json else settings.API_EXPORT_MAX_ROWS
    try:
        result = query.run(
            request.api_key,
            statement,
            "JSONCompact" if as_json else fmt,
            params=params,
            max_rows=max_rows,
            # The JSON answer is built in this process: its bound is tighter than an export's.
            max_bytes=settings.API_JSON_MAX_BYTES if as_json else settings.SQL_MAX_RESULT_BYTES,
        )
    except admission.Busy as exc:
        return problem(429, str(exc), title="Too many queries", headers={"Retry-After": str(exc.retry_after)})
    except warehouse_client.WarehouseUnavailable as exc:
        return problem(503, str(exc), headers={"Retry-After": "5"})
    refused = _refused(result, statement)
    if refused is not None:
        return refused
    if not as_json:
        response = StreamingHttpResponse(result.stream(), content_type=query.FORMATS[fmt])
        if result.length is not None:
            response["Content-Length"] = str(result.length)
        extension = {"Parquet": "parquet", "Arrow": "arrow"}.get(fmt, "csv" if "CSV" in fmt else "txt")
        response["Content-Disposition"] = f'inline; filename="result.{extension}"'
    else:
        try:
            payload = json.loads(result.reader.read_all() or b'{"meta": [], "data": []}')
        except channel.StreamFailed as exc:
            status = 413 if exc.code == RESULT_TOO_LARGE else 400
            return problem(status, str(exc), title="Query failed", code=exc.code)
        rows = payload.get("data", [])
        response = JsonResponse(
            {
                "columns": [m["name"] for m in payload.get("meta", [])],
                "types": [m["type"] for m in payload.get("meta", [])],
                "rows": rows[:max_rows],
                "truncated": len(rows) > max_rows,
                "statistics": {
                    "rows": min(len(rows), max_rows),
                    "rows_read": result.header["rows_read"],
                    "bytes_read": result.header["bytes_read"],
                    "elapsed_ms": result.header["elapsed_ms"],
                },
            }
        )
    for name, value in result.cost_headers().items():
        response[name] = value
    return response


def _refused(result: query.Answer, statement: str) -> HttpResponse | None:
    """Problem details for a query not admitted (429) or refused or failed before its first byte."""
    if not (result.refused or result.error):
        return None
    result.reader.close()
    if result.refused:
        return problem(
            429,
            result.error or "",
            title="Too many queries",
            headers={"Retry-After": str(result.retry_after)},
        )
    error = result.error or ""
    status = 403 if result.code in REFUSED_CODES else 413 if result.code == RESULT_TOO_LARGE else 400
    extra = {"code": result.code}
    position = sql_guard.error_position(error, statement)
    if position is not None:
        extra["position"] = position
    return problem(status, error, title="Query refused" if status == 403 else "Query failed", **extra)
