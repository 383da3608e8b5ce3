"""SQL Console: read-only SQL over the Data Pools, run by the warehouse worker.

A run is a QueryRun row and a console.tasks.run_sql task. The POST waits a moment for the answer,
so that a small query comes back in one round trip; a longer one answers with a panel that polls,
each poll again waiting up to a second for the result.
"""

from __future__ import annotations

import contextlib
import re
from datetime import timedelta

from celery.exceptions import TimeoutError as CeleryTimeout
from celery.result import AsyncResult
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from console import sql_guard, warehouse_client
from console.htmx import HtmxHttpRequest, is_partial
from console.models import QueryRun
from console.roles import VIEWER, requires
from console.tasks import run_sql
from pools.models import DataPool

FAST_WAIT_SECONDS = 0.5  # the POST answers with the rows when the query is done by then
POLL_WAIT_SECONDS = 1.0  # each poll waits this long for the result before answering "still running"
HISTORY_SIZE = 30  # runs listed on the page
HISTORY_KEEP = 500  # runs kept per user (the admin shows them all)
_NUMERIC = re.compile(r"^(Nullable\()?(U?Int|Float|Decimal|BFloat)")


@requires(VIEWER)
def sql_console(request: HttpRequest) -> HttpResponse:
    run = None
    if request.GET.get("run", "").isdigit():
        run = get_object_or_404(QueryRun, pk=request.GET["run"], user=request.user)
    context = {"sql": run.sql if run else ""}
    if run:
        context.update(_outcome(run, wait=0))
    return render(request, "console/sql.html", _page(request, context))


@requires(VIEWER)
@require_POST
def sql_run(request: HtmxHttpRequest) -> HttpResponse:
    # Browsers send a textarea's line breaks as CRLF; ClickHouse's error positions must match
    # the text in the editor.
    sql = request.POST.get("sql", "").replace("\r\n", "\n")
    if not sql.strip():
        return _answer(request, {"sql": sql, "error": "Write a query first."})
    run = QueryRun.objects.create(user=request.user, sql=sql)
    QueryRun.prune(request.user, keep=HISTORY_KEEP)
    try:
        run.task_id = warehouse_client.submit(run_sql, sql, f"user:{request.user.pk}")
    except warehouse_client.WarehouseUnavailable as exc:
        run.finish({"error": str(exc)})
        return _answer(request, {"sql": sql, "run": run, "error": str(exc)})
    run.save(update_fields=["task_id"])
    if not is_partial(request):
        return redirect(f"{reverse('sql:console')}?run={run.pk}")
    return _answer(request, {"sql": sql, **_outcome(run, wait=FAST_WAIT_SECONDS)})


@requires(VIEWER)
def sql_result(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(QueryRun, pk=pk, user=request.user)
    wait = POLL_WAIT_SECONDS if is_partial(request) else 0
    return _answer(request, {"sql": run.sql, **_outcome(run, wait=wait)})


def _outcome(run: QueryRun, *, wait: float) -> dict:
    """The run's result when the worker has it (recording it in the history), else pending."""
    context: dict = {"run": run}
    if not run.pending:
        return {**context, **_recorded(run)}
    task = AsyncResult(run.task_id)
    if wait and not task.ready():
        with contextlib.suppress(CeleryTimeout):
            task.get(timeout=wait, propagate=False)
    if task.ready():
        data = (
            task.result if task.successful() else {"error": f"The query failed in the worker: {task.result}"}
        )
        task.forget()
        if not run.finish(data):  # another poll recorded it first
            run.refresh_from_db()
            return {**context, **_recorded(run)}
        context.update(_result_context(data, run.sql))
    elif timezone.now() - run.created_at > _give_up_after():
        task.revoke()
        run.finish(
            {"error": "The warehouse worker did not answer; it may have been stopped. Run the query again."}
        )
        context["error"] = run.error
    else:
        context["pending"] = True
    return context


def _recorded(run: QueryRun) -> dict:
    """What the history knows of a finished run: its error, or its figures (rows are not kept)."""
    if run.failed:
        position = sql_guard.error_position(run.error, run.sql)
        return _result_context({"error": run.error, "position": position}, run.sql)
    return {"gone": True}


def _give_up_after() -> timedelta:
    # The task may wait in the queue until it expires (submit's expiry), then run its time limit.
    return timedelta(seconds=settings.WAREHOUSE_TIMEOUT * 4 + settings.SQL_MAX_EXECUTION_SECONDS + 5)


def _result_context(data: dict, sql: str) -> dict:
    if "error" in data:
        context = {"error": data["error"]}
        if data.get("position") is not None:
            context["error_at"] = error_excerpt(sql, data["position"])
        return context
    numeric = [bool(_NUMERIC.match(t)) for t in data["types"]]
    return {
        "result": data,
        "columns": list(zip(data["columns"], data["types"], numeric, strict=False)),
        "rows": [list(zip(row, numeric, strict=False)) for row in data["rows"]],
        "max_rows": settings.SQL_MAX_RESULT_ROWS,
    }


def error_excerpt(sql: str, position: int) -> dict:
    """The line of `sql` holding character `position`, split around it, for marking."""
    position = max(0, min(position, len(sql)))
    start = sql.rfind("\n", 0, position) + 1
    end = sql.find("\n", position)
    end = len(sql) if end < 0 else end
    line = sql[start:end]
    column = position - start
    return {
        "position": position,
        "line": sql.count("\n", 0, position) + 1,
        "column": column + 1,
        "before": line[:column],
        "char": line[column : column + 1],
        "after": line[column + 1 :],
    }


def _answer(request: HtmxHttpRequest, context: dict) -> HttpResponse:
    if is_partial(request):
        context["history"] = _history(request)
        return render(request, "console/sql_result.html", {**context, "oob_history": True})
    return render(request, "console/sql.html", _page(request, context))


def _page(request: HttpRequest, context: dict) -> dict:
    pools = DataPool.objects.exclude(status=DataPool.Status.DELETING).only("name", "columns", "record_count")
    # A column's type as SQL shows it: the change-event DDL's CODEC is storage, not type.
    schema = [(pool, [(n, t.split(" CODEC(")[0]) for n, t in pool.column_list()]) for pool in pools]
    return {
        "schema": schema,
        "history": _history(request),
        "max_rows": settings.SQL_MAX_RESULT_ROWS,
        "max_seconds": settings.SQL_MAX_EXECUTION_SECONDS,
        **context,
    }


def _history(request: HttpRequest):
    return QueryRun.objects.filter(user=request.user)[:HISTORY_SIZE]
