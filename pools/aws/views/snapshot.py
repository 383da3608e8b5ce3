"""The initial snapshot ("Backfill existing items") card of a pipeline page: start, progress,
pause, resume.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from console.htmx import HtmxHttpRequest, is_partial
from console.roles import EDITOR, VIEWER, requires
from pools.aws import snapshot as snapshots
from pools.aws import snapshot_plan
from pools.aws.forms import SnapshotForm
from pools.aws.models import Pipeline, Snapshot
from pools.aws.tasks import run_snapshot
from pools.aws.views.common import pipeline_or_404


def snapshot_context(pipeline: Pipeline, form: SnapshotForm | None = None) -> dict:
    snapshot = pipeline.snapshots.first()
    interrupted = bool(snapshot and snapshots.interrupted(snapshot))
    running = bool(snapshot and snapshot.status in (Snapshot.Status.PENDING, Snapshot.Status.RUNNING))
    resumable = bool(
        snapshot and (interrupted or snapshot.status in (Snapshot.Status.FAILED, Snapshot.Status.PAUSED))
    )
    # The table's size and point-in-time recovery, asked of AWS only when the choice is shown.
    plan = (
        snapshot_plan.plan(pipeline)
        if snapshots.streaming_ready(pipeline) and not (running or resumable)
        else None
    )
    if form is None:
        form = SnapshotForm(initial={"method": plan.recommended if plan else "scan"})
    return {
        "snapshot_plan": plan,
        "pipeline": pipeline,
        "snapshot": snapshot,
        "snapshot_ready": snapshots.streaming_ready(pipeline),
        "snapshot_running": running and not interrupted,
        "snapshot_interrupted": interrupted,
        "snapshot_resumable": resumable,
        "snapshot_form": form,
    }


def _queue_snapshot(request, snapshot: Snapshot) -> bool:
    try:
        result = run_snapshot.delay(snapshot.pk)
    except Exception as exc:
        messages.error(request, f"Could not queue the backfill (is Redis running?): {exc}")
        return False
    Snapshot.objects.filter(pk=snapshot.pk).update(task_id=result.id or "")
    return True


@requires(VIEWER)
def snapshot_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The backfill card; polled by htmx every second while the scan runs."""
    return render(request, "aws/_snapshot.html", snapshot_context(pipeline_or_404(pk)))


def _snapshot_answer(request: HtmxHttpRequest, pipeline) -> HttpResponse:
    """After a snapshot action: the card again (htmx), or back to it on the pipeline page."""
    if is_partial(request):
        return render(request, "aws/_snapshot.html", snapshot_context(pipeline))
    return redirect(f"{pipeline.get_absolute_url()}#snapshot")


@requires(EDITOR)
@require_POST
def snapshot_start(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    pipeline = pipeline_or_404(pk)
    form = SnapshotForm(request.POST)
    if not form.is_valid():
        if is_partial(request):
            return render(request, "aws/_snapshot.html", snapshot_context(pipeline, form))
        messages.error(request, "Check the backfill settings.")
        return redirect(pipeline)
    try:
        snapshot = snapshots.start(pipeline, user=request.user, **form.cleaned_data)
    except snapshots.SnapshotError as exc:
        messages.error(request, str(exc))
    else:
        if _queue_snapshot(request, snapshot):
            messages.success(request, f"Backfilling the items of {pipeline.table_name}; progress below.")
    return _snapshot_answer(request, pipeline)


@requires(EDITOR)
@require_POST
def snapshot_resume(request: HttpRequest, pk: int) -> HttpResponse:
    pipeline = pipeline_or_404(pk)
    snapshot = pipeline.snapshots.first()
    if snapshot is None or not snapshot_context(pipeline)["snapshot_resumable"]:
        messages.info(request, "There is no stopped backfill to resume.")
    elif _queue_snapshot(request, snapshot):
        messages.success(request, "Resuming the backfill from the last page each segment saved.")
    return _snapshot_answer(request, pipeline)


@requires(EDITOR)
@require_POST
def snapshot_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Stop a backfill for good: a running one at its next file or page (AWS's export itself, once
    asked for, runs to its end in the bucket), a paused or failed one at once."""
    pipeline = pipeline_or_404(pk)
    Snapshot.objects.filter(pipeline=pipeline, status=Snapshot.Status.RUNNING).update(cancel_requested=True)
    Snapshot.objects.filter(
        pipeline=pipeline,
        status__in=[Snapshot.Status.PENDING, Snapshot.Status.PAUSED, Snapshot.Status.FAILED],
    ).update(status=Snapshot.Status.CANCELLED, cancel_requested=True)
    messages.info(request, "The backfill is cancelled; what it loaded stays in the pool.")
    return _snapshot_answer(request, pipeline)


@requires(EDITOR)
@require_POST
def snapshot_pause(request: HttpRequest, pk: int) -> HttpResponse:
    pipeline = pipeline_or_404(pk)
    Snapshot.objects.filter(
        pipeline=pipeline, status__in=[Snapshot.Status.PENDING, Snapshot.Status.RUNNING]
    ).update(pause_requested=True)
    Snapshot.objects.filter(pipeline=pipeline, status=Snapshot.Status.PENDING).update(
        status=Snapshot.Status.PAUSED
    )
    return _snapshot_answer(request, pipeline)
