"""POST /api/v1/sql: a statement and its parameters in, JSON (or a streamed format) out."""

from __future__ import annotations

import json

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.http import require_POST

from console import sql_guard, warehouse_client
from console.api import query
from console.api.auth import QUERY, api_key_required
from console.api.problems import problem

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


@require_POST
@api_key_required(QUERY)
def sql(request: HttpRequest) -> HttpResponse:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return problem(400, 'The body must be JSON: {"sql": "SELECT …", "parameters": {…}, "format": …}.')
    if not isinstance(body, dict):
        return problem(400, 'The body must be a JSON object: {"sql": "SELECT …"}.')
    statement = body.get("sql") or body.get("query")
    if not isinstance(statement, str) or not statement.strip():
        return problem(400, 'Give the statement in "sql".')
    params = body.get("parameters") or {}
    if not isinstance(params, dict):
        return problem(400, '"parameters" must be an object of {name: value}, for {name:Type} in the SQL.')
    params = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    fmt = body.get("format") or request.GET.get("format") or "JSON"
    if fmt != "JSON" and fmt not in STREAMED:
        return problem(400, f"Unknown format {fmt!r}: choose JSON or one of {', '.join(STREAMED)}.")
    max_rows = settings.SQL_MAX_RESULT_ROWS if fmt == "JSON" else settings.API_EXPORT_MAX_ROWS
    try:
        answer = query.run(
            request.api_key,
            statement,
            "JSONCompact" if fmt == "JSON" else fmt,
            params=params,
            max_rows=max_rows,
        )
    except warehouse_client.WarehouseUnavailable as exc:
        return problem(503, str(exc), headers={"Retry-After": "5"})
    if answer.error:
        answer.reader.close()
        status = 403 if answer.code in REFUSED_CODES else 400
        extra = {"code": answer.code}
        position = sql_guard.error_position(answer.error, statement)
        if position is not None:
            extra["position"] = position
        return problem(
            status, answer.error, title="Query refused" if status == 403 else "Query failed", **extra
        )
    if fmt != "JSON":
        response = StreamingHttpResponse(answer.reader.chunks(), content_type=query.FORMATS[fmt])
        response["Content-Length"] = str(answer.header["bytes"])
        extension = {"Parquet": "parquet", "Arrow": "arrow"}.get(fmt, "csv" if "CSV" in fmt else "txt")
        response["Content-Disposition"] = f'inline; filename="result.{extension}"'
    else:
        payload = json.loads(answer.reader.read_all() or b'{"meta": [], "data": []}')
        rows = payload.get("data", [])
        response = JsonResponse(
            {
                "columns": [m["name"] for m in payload.get("meta", [])],
                "types": [m["type"] for m in payload.get("meta", [])],
                "rows": rows[:max_rows],
                "truncated": len(rows) > max_rows,
                "statistics": {
                    "rows": min(len(rows), max_rows),
                    "rows_read": answer.header["rows_read"],
                    "bytes_read": answer.header["bytes_read"],
                    "elapsed_ms": answer.header["elapsed_ms"],
                },
            }
        )
    for name, value in answer.cost_headers().items():
        response[name] = value
    return response
