from __future__ import annotations

from celery.result import AsyncResult
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from console import owned_results, warehouse_client
from console.htmx import HtmxHttpRequest, region
from console.roles import ADMIN, EDITOR, VIEWER, requires
from pools import charts, services, stats, tables
from pools.models import DataPool
from pools.tasks import warehouse_pool_stats, warehouse_preview

PREVIEW_LIMITS = (10, 50, 100, 500)


@requires(VIEWER)
def pool_list(request: HttpRequest) -> HttpResponse:
    return render(request, "pools/list.html", {"pools": DataPool.objects.all()})


@requires(VIEWER)
def pool_detail(request: HtmxHttpRequest, name: str) -> HttpResponse:
    pool = get_object_or_404(DataPool, name=name)
    live = _live(pool)
    if region(request) == "live":
        return render(request, "pools/_live.html", {"pool": pool, **live})
    context = {
        "pool": pool,
        **live,
        "quarantined": pool.quarantine.filter(replayed_at__isnull=True)[:20],
        "columns": tables.schema_rows(pool),
        "fed_by": pool.fed_by.all(),
        "chart": charts.svg_bars(charts.ingestion_series(pool.pk)),
        "limits": PREVIEW_LIMITS,
    }
    return render(request, "pools/detail.html", context)


def _live(pool: DataPool) -> dict:
    """Statistics and recent deliveries; asks the warehouse for fresh statistics when a load
    finished after they were taken, and says whether the region should poll again."""
    stale = stats.stale(pool)
    if stale:
        try:
            warehouse_client.submit(warehouse_pool_stats, [pool.pk])
        except warehouse_client.WarehouseUnavailable:
            stale = False  # nothing will refresh them: show what is stored, without polling
    refreshing = stale or stats.loading(pool)
    # Read the figures after deciding whether to poll: cards that stop polling then show at least
    # what the deliveries seen as loaded left, even when the load finished after the page read the pool.
    pool.refresh_from_db()
    return {"deliveries": pool.deliveries.defer("body")[:20], "refreshing": refreshing}


@requires(EDITOR)
@require_POST
def send_test_events(request: HttpRequest, name: str) -> HttpResponse:
    """Post sample change records to the pool's own endpoint, through the real Firehose path."""
    pool = get_object_or_404(DataPool, name=name)
    try:
        sent = services.send_test_events(pool, request.build_absolute_uri("/"))
    except ValidationError as exc:
        messages.error(request, f"Sending test events failed. {' '.join(exc.messages)}")
    else:
        messages.success(
            request,
            f"Sent {sent['records']} test change records to this pool's endpoint (request "
            f"{sent['request_id']}). They appear in Preview Data once loaded, usually within a second.",
        )
    return redirect(pool)


@requires(EDITOR)
def delete_pool(request: HttpRequest, name: str) -> HttpResponse:
    pool = get_object_or_404(DataPool, name=name)
    error = ""
    if request.method == "POST":
        try:
            services.delete_pool(pool, request.POST.get("confirm_name", ""))
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            messages.success(request, f"Data Pool {pool.name} is being deleted with its table and data.")
            return redirect("pools:list")
    return render(request, "pools/delete.html", {"pool": pool, "error": error})


@requires(VIEWER)
def preview(request: HtmxHttpRequest, name: str) -> HttpResponse:
    """Start a Preview Data task and answer with a panel that polls for its result."""
    pool = get_object_or_404(DataPool, name=name)
    limit = _limit(request)
    try:
        task_id = warehouse_client.submit(warehouse_preview, pool.pk, limit, f"user:{request.user.pk}")
    except warehouse_client.WarehouseUnavailable as exc:
        return render(request, "pools/_preview.html", {"pool": pool, "error": str(exc), "limit": limit})
    token = owned_results.token(task_id, request.user, _preview_page(pool))
    context = {"pool": pool, "result_token": token, "limit": limit, "pending": True, "limits": PREVIEW_LIMITS}
    template = "pools/_preview.html" if region(request) is not None else "pools/preview.html"
    return render(request, template, context)


@requires(VIEWER)
def preview_result(request: HtmxHttpRequest, name: str, token: str) -> HttpResponse:
    """The result of this user's Preview of this pool; 404 for anyone else's (console/owned_results)."""
    pool = get_object_or_404(DataPool, name=name)
    result = AsyncResult(owned_results.task_id(token, request.user, _preview_page(pool)))
    context = {"pool": pool, "result_token": token, "limit": _limit(request), "limits": PREVIEW_LIMITS}
    if not result.ready():
        context["pending"] = True
    elif result.failed():
        context["error"] = f"Preview failed: {result.result}"
    else:
        data = result.get()
        if "error" in data:
            context["error"] = data["error"]
        else:
            context["result"] = data
            context["rows"] = [list(zip(data["columns"], row, strict=False)) for row in data["rows"]]
        result.forget()
    template = "pools/_preview.html" if region(request) is not None else "pools/preview.html"
    return render(request, template, context)


@requires(ADMIN)
@require_POST
def rotate_key(request: HttpRequest, name: str) -> HttpResponse:
    pool = get_object_or_404(DataPool, name=name)
    pool.rotate_access_key()
    messages.success(request, "A new access key is in force; update your Firehose stream with it.")
    return redirect(pool)


def _preview_page(pool: DataPool) -> str:
    return f"preview:{pool.pk}"


def _limit(request: HttpRequest) -> int:
    try:
        value = int(request.GET.get("limit", 50))
    except ValueError:
        value = 50
    return value if value in PREVIEW_LIMITS else 50
