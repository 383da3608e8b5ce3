"""A read-only subset of ClickHouse's HTTP interface under /clickhouse, so that ClickHouse clients
(clickhouse-connect and, through it, pandas; drivers that speak the same protocol) read the pools
unchanged: user = the API key's name, password = the key.

- The query comes in the URL (`query=`) and/or the body; a trailing `FORMAT <name>` or the
  `default_format` parameter chooses the output format (TabSeparated otherwise), from
  query.FORMATS; `param_<name>` are the query's {name:Type} parameters; `database` must be the
  pools' database (or `default`, which means the same).
- Every query passes the SQL Console's guard (console.sql_guard), limited to the key's pools.
- What clients ask of system.* at connect time is answered from CATALOG, an allow-list of
  Shoal's own answers, never from the real system tables.
- Settings: the transport parameters clients send are accepted and ignored; any other setting is
  refused as ClickHouse refuses it in readonly mode, since the limits are Shoal's.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qsl

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.views.decorators.csrf import csrf_exempt

from console import admission, request_body, sql_guard, warehouse_client
from console.access.api import query
from console.access.api.auth import QUERY, api_key_required
from console.warehouse.base import quote_string
from pools.models import DataPool

READONLY = sql_guard.READONLY
UNKNOWN_FORMAT = 73
TOO_MANY_SIMULTANEOUS_QUERIES = 202
UNKNOWN_DATABASE = 81
BAD_ARGUMENTS = 36
TRANSPORT = frozenset(
    {
        "query",
        "database",
        "default_format",
        "query_id",
        "session_id",
        "session_timeout",
        "session_check",
        "compress",
        "decompress",
        "enable_http_compression",
        "wait_end_of_query",
        "buffer_size",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
        "client_protocol_version",
        "cancel_http_readonly_queries_on_client_close",
        "user",
        "password",
        "quota_key",
        "result_overflow_mode",
        "readonly",
    }
)
_FORMAT = re.compile(r"\s+FORMAT\s+([A-Za-z][A-Za-z0-9]*)\s*;?\s*$", re.IGNORECASE)
_SPACE = re.compile(r"\s+")
_CODE_NAMES = {
    sql_guard.SYNTAX_ERROR: "SYNTAX_ERROR",
    READONLY: "READONLY",
    sql_guard.ACCESS_DENIED: "ACCESS_DENIED",
    UNKNOWN_FORMAT: "UNKNOWN_FORMAT",
    UNKNOWN_DATABASE: "UNKNOWN_DATABASE",
    BAD_ARGUMENTS: "BAD_ARGUMENTS",
    516: "AUTHENTICATION_FAILED",
    202: "TOO_MANY_SIMULTANEOUS_QUERIES",
}


def _settings_answer() -> str:
    """system.settings as clients see it: Shoal's fixed limits, all read-only, so that a client
    does not try to change them (clickhouse-connect reads this list when it connects)."""
    rows = [
        ("readonly", "1"),
        ("max_execution_time", str(settings.SQL_MAX_EXECUTION_SECONDS)),
        ("max_result_rows", str(settings.API_EXPORT_MAX_ROWS)),
        ("final", "1"),
        ("date_time_output_format", CLICKHOUSE_OUTPUT["date_time_output_format"]),
    ]
    values = ", ".join(f"({quote_string(n)}, {quote_string(v)}, 1)" for n, v in rows)
    return f"SELECT name, value, readonly FROM values('name String, value String, readonly UInt8', {values})"


def _values(structure: str, rows: list[tuple]) -> str:
    """A SELECT over literal rows (values() passes the guard like any query)."""
    if not rows:
        return f"SELECT * FROM values({quote_string(structure)}, {_empty_row(structure)}) WHERE 0"
    body = ", ".join("(" + ", ".join(quote_string(str(v)) for v in row) + ")" for row in rows)
    return f"SELECT * FROM values({quote_string(structure)}, {body})"


def _empty_row(structure: str) -> str:
    return "(" + ", ".join("''" for _ in structure.split(",")) + ")"


def _readable_pools(api_key) -> list:
    pools = DataPool.objects.exclude(status=DataPool.Status.DELETING).order_by("name")
    allowed = api_key.readable_pools()
    return [p for p in pools if allowed is None or p.name in allowed]


def _databases(api_key, match) -> str:
    return _values("name String", [(settings.WAREHOUSE.database,)])


def _ours(database: str | None) -> bool:
    """Whether a client's database name means the pools' database."""
    return (database or "") in (*DATABASE_ALIASES, settings.WAREHOUSE.database)


def _pool(api_key, match):
    """The readable pool a catalogue question names, or None."""
    if not _ours(match.group("db")):
        return None
    return next((p for p in _readable_pools(api_key) if p.name == match.group("table")), None)


def _tables(api_key, match) -> str:
    views = "negated" in match.groupdict() and match.group("negated") is None  # engine LIKE '%View'

    names = [] if views or not _ours(match.group("db")) else [(p.name,) for p in _readable_pools(api_key)]
    return _values("name String", names)


def _table_facts(api_key, match) -> str | None:
    """What SQLAlchemy's dialect reflects of a table (engine, keys, comment)."""
    pool = _pool(api_key, match)
    facts = {
        "name": match.group("table"),
        "engine_full": pool.engine if pool else "",
        "engine": pool.engine.split("(")[0] if pool else "",
        "partition_key": pool.partition_key if pool else "",
        "sorting_key": pool.sorting_key if pool else "",
        "primary_key": pool.sorting_key if pool else "",
        "sampling_key": "",
        "comment": pool.description if pool else "",
    }
    wanted = [c.strip() for c in match.group("columns").split(",")]
    if any(c not in facts for c in wanted):
        return None  # not a question Shoal answers: refused as any system table
    rows = [tuple(facts[c] for c in wanted)] if pool else []
    return _values(", ".join(f"{c} String" for c in wanted), rows)


def _columns(api_key, match) -> str:
    rows = []
    if _ours(match.group("db")):
        for pool in _readable_pools(api_key):
            if pool.name == match.group("table"):
                rows = [(name, type_.split(" CODEC(")[0]) for name, type_ in pool.column_list()]
    return _values("name String, type String", rows)


def _settings(api_key, match) -> str:
    return _settings_answer()


def _exists(api_key, match) -> str:
    """EXISTS of a pool: 1 for one this key may read; for any other name (another key's pool
    included) what ClickHouse answers for a table that does not exist."""
    database = (match.group("db") or "").rstrip(".")
    known = database in ("", *DATABASE_ALIASES, settings.WAREHOUSE.database) and any(
        p.name == match.group("table") for p in _readable_pools(api_key)
    )
    return _values("result UInt8", [(1 if known else 0,)])


# Connect-time questions about system.* (clickhouse-connect's system.settings; the catalogue
# that BI drivers list), by their text with runs of spaces collapsed, answered with SQL Shoal
# writes over literal rows: the Data Pools this key may read, never the real system tables.
CATALOG = [
    (
        # clickhouse-connect 0.x writes `readonly as readonly`, 1.x `readonly`.
        re.compile(r"^SELECT name, value, readonly( as readonly)? FROM system\.settings LIMIT 10000$", re.I),
        _settings,
    ),
    (re.compile(r"^SELECT name FROM system\.databases( ORDER BY name)?$", re.I), _databases),
    (re.compile(r"^SHOW DATABASES$", re.I), _databases),
    # clickhouse-sqlalchemy (Superset): tables, and views (none: Shoal's views are not tables).
    (
        re.compile(
            r"^SELECT name FROM system\.tables WHERE engine (?P<negated>NOT )?LIKE '%View' "
            r"(AND name NOT LIKE '\.inner%' )?AND database = '(?P<db>[A-Za-z0-9_]+)'$",
            re.I,
        ),
        _tables,
    ),
    (
        re.compile(
            r"^SELECT (?P<columns>[a-z_]+(, [a-z_]+)*) FROM system\.tables WHERE "
            r"(database ?= ?'(?P<db>[A-Za-z0-9_]+)' AND )?name ?= ?'(?P<table>[A-Za-z0-9_]+)'$",
            re.I,
        ),
        _table_facts,
    ),
    (
        re.compile(
            r"^SELECT name FROM system\.tables WHERE database = '(?P<db>[A-Za-z0-9_]+)'( ORDER BY name)?$",
            re.I,
        ),
        _tables,
    ),
    (
        re.compile(
            r"^SELECT name, type FROM system\.columns WHERE database = '(?P<db>[A-Za-z0-9_]+)' "
            r"AND table = '(?P<table>[A-Za-z0-9_]+)'$",
            re.I,
        ),
        _columns,
    ),
    (
        re.compile(
            r"^EXISTS( TEMPORARY)?( TABLE)? `?(?P<db>[A-Za-z0-9_]+\.)?(?P<table>[A-Za-z0-9_]+)`?$", re.I
        ),
        _exists,
    ),
]


def catalog_answer(api_key, text: str) -> str | None:
    """Shoal's SQL that answers a known connect-time question, or None."""
    normalized = _SPACE.sub(" ", text.strip().rstrip(";").strip())
    for pattern, answer in CATALOG:
        match = pattern.match(normalized)
        if match:
            return answer(api_key, match)
    return None


# ClickHouse suggests close names ("Maybe you meant shoal.orders?"): with a key limited to some
# pools, that would name the others.
_HINT = re.compile(r"\.?\s*Maybe you meant [^?]*\?", re.I)


def without_hints(message: str) -> str:
    return _HINT.sub("", message)


def exception_text(code: int | None, message: str) -> str:
    name = _CODE_NAMES.get(code or 0)
    suffix = f" ({name})" if name and f"({name})" not in message else ""
    return f"Code: {code or 0}. DB::Exception: {message}{suffix}\n"


def error(status: int, message: str, code: int | None, headers: dict | None = None) -> HttpResponse:
    """An error as ClickHouse writes it: status, X-ClickHouse-Exception-Code, `Code: N. DB::Exception: …`."""
    response = HttpResponse(
        exception_text(code, message), status=status, content_type="text/plain; charset=UTF-8"
    )
    response["X-ClickHouse-Exception-Code"] = str(code or 0)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _url_credentials(request: HttpRequest) -> tuple[str | None, str | None]:
    return request.GET.get("user"), request.GET.get("password")


@csrf_exempt
@login_not_required
def ping(request: HttpRequest) -> HttpResponse:
    return HttpResponse("Ok.\n", content_type="text/plain; charset=UTF-8")


ping.shoal_api_scope = "public"


# ClickHouse's own output defaults, which its clients parse (Shoal's pages and /api/v1/sql write
# date-times as ISO 8601).
CLICKHOUSE_OUTPUT = {"date_time_output_format": "simple"}
# The longest query text read from a request's body.
MAX_QUERY_BYTES = 1 << 20
# Databases a client may name: the pools' own, `default`, and `clickhouse`, which
# @clickhouse/client reads from a URL such as http://host:8000/clickhouse (it takes a URL's path
# for the database and posts to /, which Shoal routes here: console/urls.py).
DATABASE_ALIASES = ("", "default", "clickhouse")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _query_text(request: HttpRequest, params: dict[str, str]) -> str:
    """The query: `query=` in the URL, then the body (sent whole or chunked)."""
    text = params.get("query", "")
    if request.method == "POST":
        raw = request_body.read(request, MAX_QUERY_BYTES)
        if len(raw) > MAX_QUERY_BYTES:
            raise ValueError(f"the query is longer than {MAX_QUERY_BYTES} bytes")
        body = raw.decode("utf-8", "replace")
        text = f"{text}\n{body}" if text and body else text or body
    return text


class _Refused(Exception):
    def __init__(self, response: HttpResponse):
        self.response = response


@dataclass(frozen=True)
class _Request:
    """What a client asked: the query, its format, its {name:Type} parameters and its id."""

    text: str
    fmt: str
    query_params: dict[str, str]
    query_id: str


def _parse(request: HttpRequest, params: dict[str, str]) -> _Request:
    query_id = params.get("query_id") or str(uuid.uuid4())
    if _CONTROL.search(query_id) or len(query_id) > 256:
        raise _Refused(error(400, "query_id must be at most 256 printable characters.", BAD_ARGUMENTS))
    try:
        text = _query_text(request, params)
    except ValueError as exc:
        raise _Refused(error(413, str(exc), BAD_ARGUMENTS)) from None
    database = params.get("database")
    if database not in (None, *DATABASE_ALIASES, settings.WAREHOUSE.database):
        message = f"Database {database} does not exist: the pools are in {settings.WAREHOUSE.database}."
        raise _Refused(error(404, message, UNKNOWN_DATABASE))
    query_params = {}
    for name, value in params.items():
        if name.startswith("param_"):
            query_params[name[len("param_") :]] = value
        elif name not in TRANSPORT:
            message = f"Cannot modify '{name}' setting in readonly mode: Shoal's limits are fixed."
            raise _Refused(error(403, message, READONLY))
    fmt = params.get("default_format") or "TabSeparated"
    match = _FORMAT.search(text)
    if match:
        fmt, text = match.group(1), text[: match.start()]
    if fmt not in query.FORMATS:
        message = f"Unknown format {fmt}: Shoal answers in {', '.join(query.FORMATS)}."
        raise _Refused(error(400, message, UNKNOWN_FORMAT))
    return _Request(text, fmt, query_params, query_id)


def _streamed(request: HttpRequest, params: dict[str, str], asked: _Request, answer) -> HttpResponse:
    """The answer's rows as they come, with ClickHouse's headers (gzip-compressed when asked)."""
    compress = params.get("enable_http_compression") == "1" and "gzip" in request.headers.get(
        "Accept-Encoding", ""
    )
    response = StreamingHttpResponse(answer.stream(gzip=compress), content_type=query.FORMATS[asked.fmt])
    if compress:
        response["Content-Encoding"] = "gzip"
    elif answer.length is not None:
        response["Content-Length"] = str(answer.length)
    response["X-ClickHouse-Format"] = asked.fmt
    response["X-ClickHouse-Query-Id"] = asked.query_id
    response["X-ClickHouse-Timezone"] = "UTC"
    response["X-ClickHouse-Summary"] = json.dumps(
        {
            "read_rows": str(answer.header["rows_read"]),
            "read_bytes": str(answer.header["bytes_read"]),
            "elapsed_ns": str(int(answer.header["elapsed_ms"] * 1_000_000)),
        }
    )
    for name, value in answer.cost_headers().items():
        response[name] = value
    return response


def _view(request: HttpRequest) -> HttpResponse:
    params = dict(parse_qsl(request.META.get("QUERY_STRING", ""), keep_blank_values=True))
    try:
        asked = _parse(request, params)
    except _Refused as refused:
        return refused.response
    if not asked.text.strip():
        return HttpResponse("Ok.\n", content_type="text/plain; charset=UTF-8")
    sql = catalog_answer(request.api_key, asked.text) or asked.text
    try:
        answer = query.run(
            request.api_key,
            sql,
            asked.fmt,
            params=asked.query_params,
            max_rows=settings.API_EXPORT_MAX_ROWS,
            max_bytes=settings.SQL_MAX_RESULT_BYTES,
            output=CLICKHOUSE_OUTPUT,
        )
    except admission.Busy as exc:
        return error(429, str(exc), TOO_MANY_SIMULTANEOUS_QUERIES, {"Retry-After": str(exc.retry_after)})
    except warehouse_client.WarehouseUnavailable as exc:
        return error(503, str(exc), 0)
    if answer.refused:
        answer.reader.close()
        headers = {"Retry-After": str(answer.retry_after), "X-ClickHouse-Query-Id": asked.query_id}
        return error(429, answer.error or "", TOO_MANY_SIMULTANEOUS_QUERIES, headers)
    if answer.error:
        answer.reader.close()
        status = 403 if answer.code in (READONLY, sql_guard.ACCESS_DENIED) else 400
        headers = {"X-ClickHouse-Query-Id": asked.query_id}
        return error(status, without_hints(answer.error), answer.code, headers)
    return _streamed(request, params, asked, answer)


_view.credentials_from = _url_credentials
interface = api_key_required(QUERY, refuse=error)(_view)


# What marks a request to / as a ClickHouse client's rather than a browser's.
_CLICKHOUSE_PARAMS = frozenset({"query", "query_id", "database", "default_format", "user"})


def _from_a_clickhouse_client(request: HttpRequest) -> bool:
    if request.headers.get("X-ClickHouse-User") or request.headers.get("X-ClickHouse-Key"):
        return True
    if _CLICKHOUSE_PARAMS & set(request.GET):
        return True
    return request.method == "POST" and request.headers.get("Authorization", "").startswith("Basic ")


@csrf_exempt
@login_not_required
def root(request: HttpRequest) -> HttpResponse:
    """`/`: the console for a browser; ClickHouse's HTTP interface for a ClickHouse client. Given
    the URL http://host:8000/clickhouse, @clickhouse/client takes `clickhouse` for the database
    and sends its queries to `/`; real ClickHouse answers there too (`curl 'host:8123/?query=…'`)."""
    if _from_a_clickhouse_client(request):
        return interface(request)
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    return redirect("pools:list")


root.shoal_api_scope = "query"
