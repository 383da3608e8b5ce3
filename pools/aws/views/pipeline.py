"""The page of an AWS pipeline: its steps (polled while a phase runs), retry, the live status of
its resources and failed deliveries, replay, pushing the endpoint again, teardown, and the sandbox's
sample order.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_POST

from console.htmx import HtmxHttpRequest, is_partial
from console.roles import ADMIN, EDITOR, VIEWER, requires
from pools.aws import errors, forms, pipelines, sandbox
from pools.aws.clients import connect
from pools.aws.models import Pipeline, delivery_url_problem
from pools.aws.tasks import check_pipeline, push_firehose_endpoint, replay_failed_deliveries
from pools.aws.views.common import pipeline_or_404
from pools.aws.views.snapshot import snapshot_context
from pools.pull.status import pull_status

log = logging.getLogger(__name__)

CHECK_STALE = timedelta(seconds=30)
CHECK_GIVE_UP = timedelta(seconds=45)  # no `default` worker answered


def _steps_context(pipeline: Pipeline) -> dict:
    steps = pipelines.phase_steps(pipeline)
    return {
        "pipeline": pipeline,
        "steps": steps,
        "percent": pipelines.progress(steps),
        "failed_step": next((s for s in steps if s.state == "failed"), None),
    }


@requires(VIEWER)
def pipeline_detail(request: HttpRequest, pk: int) -> HttpResponse:
    pipeline = pipeline_or_404(pk)
    _maybe_check(pipeline)
    context = {
        **_steps_context(pipeline),
        **_status_context(pipeline),
        "url_problem": delivery_url_problem(settings.PUBLIC_BASE_URL),
        "relay_alive": sandbox.relay_alive() if pipeline.connection.is_emulator else None,
        "pull": pull_status(pipeline) if pipeline.pulls else None,
        "teardown_form": forms.TeardownForm(),
        **snapshot_context(pipeline),
    }
    return render(request, "aws/pipeline.html", context)


@requires(VIEWER)
def pipeline_progress(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The steps and progress bar; polled by htmx every second while a phase runs."""
    pipeline = pipeline_or_404(pk)
    response = render(request, "aws/_steps.html", _steps_context(pipeline))
    if is_partial(request) and request.GET.get("was") == "running" and not pipeline.running:
        response["HX-Refresh"] = "true"  # finished: reload so that the rest of the page follows
    return response


@requires(ADMIN)
@require_POST
def pipeline_retry(request: HttpRequest, pk: int) -> HttpResponse:
    pipeline = pipeline_or_404(pk)
    try:
        keys = pipelines.resume(pipeline, pipeline.phase)
    except errors.AwsError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, f"Retrying from “{keys[0] if keys else 'the end'}”; nothing is created twice."
        )
    return redirect(pipeline)


def _maybe_check(pipeline: Pipeline, *, force: bool = False) -> None:
    """Queue a status check unless a recent one exists or one is on its way."""
    if pipeline.running:
        return
    now = timezone.now()
    fresh = pipeline.checked_at and now - pipeline.checked_at < CHECK_STALE
    pending = pipeline.check_requested_at and (
        not pipeline.checked_at or pipeline.check_requested_at > pipeline.checked_at
    )
    if (fresh and not force) or (pending and now - pipeline.check_requested_at < CHECK_GIVE_UP):
        return
    Pipeline.objects.filter(pk=pipeline.pk).update(check_requested_at=now)
    pipeline.check_requested_at = now
    check_pipeline.enqueue(pipeline.pk)  # refused: logged; the page asks again after CHECK_GIVE_UP


def _status_context(pipeline: Pipeline) -> dict:
    now = timezone.now()
    waiting = bool(
        pipeline.check_requested_at
        and (not pipeline.checked_at or pipeline.check_requested_at > pipeline.checked_at)
    )
    replaying = bool(
        pipeline.replay_requested_at
        and pipeline.replay_requested_at > _parse_time(pipeline.last_replay.get("finished_at"))
    )
    status = pipeline.resource_status or {}
    return {
        "pipeline": pipeline,
        "status": status,
        "failed": status.get("failed"),
        "checking": waiting and now - pipeline.check_requested_at < CHECK_GIVE_UP,
        "no_worker": waiting and now - pipeline.check_requested_at >= CHECK_GIVE_UP,
        "replaying": replaying and now - pipeline.replay_requested_at < timedelta(minutes=30),
        "monitor_interval": int(settings.AWS_MONITOR_INTERVAL),
    }


def _parse_time(value: str | None) -> datetime:
    parsed = parse_datetime(value) if value else None
    return parsed or datetime.min.replace(tzinfo=UTC)


@requires(VIEWER)
def pipeline_status(request: HttpRequest, pk: int) -> HttpResponse:
    """Resources and delivery failures; polled while a check or a replay runs."""
    pipeline = pipeline_or_404(pk)
    return render(request, "aws/_status.html", _status_context(pipeline))


@requires(EDITOR)
@require_POST
def pipeline_check(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    pipeline = pipeline_or_404(pk)
    _maybe_check(pipeline, force=True)
    if is_partial(request):
        return render(request, "aws/_status.html", _status_context(pipeline))
    return redirect(pipeline)


@requires(EDITOR)
@require_POST
def pipeline_replay(request: HttpRequest, pk: int) -> HttpResponse:
    pipeline = pipeline_or_404(pk)
    Pipeline.objects.filter(pk=pk).update(replay_requested_at=timezone.now())
    if not replay_failed_deliveries.enqueue(pipeline.pk):
        messages.error(request, "Could not queue the replay: Redis is not reachable. Try again.")
    else:
        messages.success(request, "Replaying the failed deliveries into the pool; the result appears below.")
    return redirect(pipeline)


@requires(ADMIN)
@require_POST
def pipeline_push_endpoint(request: HttpRequest, pk: int) -> HttpResponse:
    pipeline = pipeline_or_404(pk)
    if not push_firehose_endpoint.enqueue(pipeline.pk):
        messages.error(request, "Could not queue the update: Redis is not reachable. Try again.")
    else:
        messages.success(
            request, "Sending the pool's current endpoint URL and access key to the Firehose stream."
        )
    return redirect(pipeline)


@requires(ADMIN)
def pipeline_teardown(request: HttpRequest, pk: int) -> HttpResponse:
    pipeline = pipeline_or_404(pk)
    form = forms.TeardownForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        Pipeline.objects.filter(pk=pk).update(keep_bucket=form.cleaned_data["keep_bucket"])
        try:
            pipelines.resume(pipeline, "teardown")
        except errors.AwsError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Tearing down what Shoal created; what you chose stays.")
        return redirect(pipeline)
    return render(request, "aws/teardown.html", {"pipeline": pipeline, "form": form})


@requires(ADMIN)
@require_POST
def pipeline_sample_order(request: HttpRequest, pk: int) -> HttpResponse:
    """The guide's three kinds of change, from the page: put an order (INSERT), move one on to its
    next status (MODIFY) or delete one (REMOVE), in the sandbox's table."""
    pipeline = pipeline_or_404(pk)
    if not pipeline.connection.is_emulator:
        messages.error(request, "Sample orders are for the local sandbox only.")
        return redirect(pipeline)
    change = request.POST.get("change", "put")
    try:
        said = _sample_change(change, connect(pipeline.connection), pipeline.table_name)
    except Exception as exc:
        messages.error(request, f"Could not change a sample order: {errors.describe(exc)}")
    else:
        if said is None:
            messages.info(request, f"{pipeline.table_name} has no order yet: put one first.")
        else:
            messages.success(
                request,
                f"{said} The sandbox relay delivers the change within seconds: see Preview Data on "
                "the pool page.",
            )
    return redirect(pipeline)


def _sample_change(change: str, aws, table: str) -> str | None:
    if change == "modify":
        order = sandbox.update_sample_order(aws, table)
        return order and f"Order {order['order_id']} is now {order['status']} (a MODIFY)."
    if change == "remove":
        order = sandbox.delete_sample_order(aws, table)
        return order and f"Deleted order {order['order_id']} (a REMOVE)."
    order = sandbox.put_sample_order(aws, table)
    return (
        f"Put order {order['order_id']} ({order['taqueria']}, {order['total_price']}) into {table} "
        "(an INSERT)."
    )
