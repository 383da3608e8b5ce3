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
from console.access.api import catalog, native_hello, query
from console.access.api.auth import QUERY, api_key_required

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
        # clickhouse-java (Metabase) sends it with every query; Shoal inserts nothing.
        "async_insert",
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


def _go_hello(request: HttpRequest, asked) -> HttpResponse:
    """clickhouse-go's first question, in the layout it reads before it knows the revision
    (console/access/api/native_hello.py), with the engine's version."""
    try:
        answer = query.run(
            request.api_key,
            "SELECT version()",
            "TabSeparated",
            max_rows=1,
            max_bytes=1024,
            output=CLICKHOUSE_OUTPUT,
        )
    except warehouse_client.WarehouseUnavailable as exc:
        return error(503, str(exc), 0)
    if answer.error:
        answer.reader.close()
        return error(400, answer.error, answer.code)
    version = answer.reader.read_all().decode().strip()
    response = HttpResponse(native_hello.block(version, "UTC"), content_type=query.FORMATS["Native"])
    response["X-ClickHouse-Format"] = "Native"
    response["X-ClickHouse-Query-Id"] = asked.query_id
    response["X-ClickHouse-Timezone"] = "UTC"
    return response


def catalog_sql(api_key, text: str, database: str | None = None) -> str:
    """What runs for a client's query: Shoal's answer to a catalogue statement, the query with its
    system tables replaced by the key's own rows (console/access/api/catalog.py), or the query."""
    answer = catalog.statement_answer(api_key, text, database)
    if answer is None and catalog.mentions_system(text):
        answer = catalog.rewrite(api_key, text, database)
    return answer or text


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


CLICKHOUSE_OUTPUT = catalog.CLICKHOUSE_OUTPUT
# The longest query text read from a request's body.
MAX_QUERY_BYTES = 1 << 20
# Databases a client may name: the pools' own, `default`, and `clickhouse`, which
# @clickhouse/client reads from a URL such as http://host:8000/clickhouse (it takes a URL's path
# for the database and posts to /, which Shoal routes here: console/urls.py).
DATABASE_ALIASES = catalog.DATABASE_ALIASES
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
    database: str | None = None


def _parse(request: HttpRequest, params: dict[str, str]) -> _Request:
    # The Java client (Metabase) sends the database, format and query id as headers, which
    # ClickHouse takes as it takes the URL's parameters.
    headers = request.headers
    query_id = params.get("query_id") or headers.get("X-ClickHouse-Query-Id") or str(uuid.uuid4())
    if _CONTROL.search(query_id) or len(query_id) > 256:
        raise _Refused(error(400, "query_id must be at most 256 printable characters.", BAD_ARGUMENTS))
    try:
        text = _query_text(request, params)
    except ValueError as exc:
        raise _Refused(error(413, str(exc), BAD_ARGUMENTS)) from None
    database = params.get("database") or headers.get("X-ClickHouse-Database")
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
    fmt = params.get("default_format") or headers.get("X-ClickHouse-Format") or "TabSeparated"
    match = _FORMAT.search(text)
    if match:
        fmt, text = match.group(1), text[: match.start()]
    if fmt not in query.FORMATS:
        message = f"Unknown format {fmt}: Shoal answers in {', '.join(query.FORMATS)}."
        raise _Refused(error(400, message, UNKNOWN_FORMAT))
    return _Request(text, fmt, query_params, query_id, database)


def _streamed(request: HttpRequest, params: dict[str, str], asked: _Request, answer) -> HttpResponse:
    """The answer's rows as they come, with ClickHouse's headers (gzip-compressed when asked)."""
    compress = params.get("enable_http_compression") == "1" and "gzip" in request.headers.get(
        "Accept-Encoding", ""
    )
    # compress=1: ClickHouse's compressed blocks, which the Java client (Metabase) asks for.
    blocks = params.get("compress") == "1"
    response = StreamingHttpResponse(
        answer.stream(gzip=compress, blocks=blocks), content_type=query.FORMATS[asked.fmt]
    )
    if compress:
        response["Content-Encoding"] = "gzip"
    elif answer.length is not None and not blocks:
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
    if native_hello.asked(asked.text, asked.fmt, params):
        return _go_hello(request, asked)
    try:
        sql = catalog_sql(request.api_key, asked.text, asked.database)
    except catalog.NoSuchTable as exc:
        return error(404, str(exc), exc.code, {"X-ClickHouse-Query-Id": asked.query_id})
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
