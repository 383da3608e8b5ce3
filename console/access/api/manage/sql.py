"""POST /api/v1/sql: a query with any key, carried out by console.access.api.sql_api."""

from __future__ import annotations

import json
from typing import Any, Literal

from ninja import Field, Router, Schema

from console.access.api import sql_api
from console.access.api.manage.api import ERRORS, AnyKey, Problem

router = Router()


class SqlIn(Schema):
    sql: str = Field(..., min_length=1, description="One read-only statement over the Data Pools.")
    parameters: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Values of the statement's {name:Type} parameters."
    )
    format: Literal[("JSON", *sql_api.STREAMED)] = Field(  # type: ignore[valid-type]
        "JSON", description="JSON (below), or the rows streamed in this ClickHouse format."
    )


class SqlStatistics(Schema):
    rows: int
    rows_read: int
    bytes_read: int
    elapsed_ms: float


class SqlOut(Schema):
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    truncated: bool = Field(..., description="The rows were cut to SQL_MAX_RESULT_ROWS.")
    statistics: SqlStatistics


@router.post(
    "/sql",
    auth=AnyKey(),
    response={200: SqlOut, 400: Problem, **ERRORS},
    tags=["Query"],
)
def run_sql(request, body: SqlIn):
    """Run a query with any key (a query key reads its pools only), through the SQL Console's guard
    and limits. Every answer carries X-Shoal-Rows-Read, X-Shoal-Bytes-Read, X-Shoal-Elapsed-Ms."""
    params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.parameters.items()}
    return sql_api.answer(request, body.sql, params, body.format)
