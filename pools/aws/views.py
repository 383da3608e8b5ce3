"""Console pages of AWS connections and pipelines.

Look-ups the user waits for (test a connection, list tables, streams and buckets) run here with the
short timeouts of clients.py; whatever creates, deletes or waits runs in the `default` worker.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django import forms as django_forms
from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.db.models import Count, ProtectedError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_POST

from console import wizard
from console.htmx import HtmxHttpRequest
from console.roles import ADMIN, EDITOR, VIEWER, requires
from console.wizard import Run, Step
from pools.aws import discovery, errors, forms, pipelines, sandbox
from pools.aws import snapshot as snapshots
from pools.aws.clients import connect
from pools.aws.models import STREAMING_PRECISION, AwsConnection, Pipeline, Snapshot, delivery_url_problem
from pools.models import DataPool

log = logging.getLogger(__name__)

CHECK_STALE = timedelta(seconds=30)
CHECK_GIVE_UP = timedelta(seconds=45)  # no `default` worker answered


# --- Connections --------------------------------------------------------------------------------


@requires(VIEWER)
def connections(request: HttpRequest) -> HttpResponse:
    context = {
        "connections": AwsConnection.objects.annotate(pipeline_count=Count("pipelines")),
        "pipelines": Pipeline.objects.select_related("pool", "connection").exclude(
            status=Pipeline.Status.REMOVED
        ),
    }
    return render(request, "aws/connections.html", context)


@requires(ADMIN)
def connection_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    connection = get_object_or_404(AwsConnection, pk=pk) if pk else AwsConnection()
    form = forms.ConnectionForm(request.POST or None, instance=connection)
    if request.method == "POST" and form.is_valid():
        connection = form.save()
        messages.success(request, f"Saved the AWS connection {connection.name}. Test it below.")
        return redirect(connection)
    return render(request, "aws/connection_form.html", {"form": form, "connection": connection})


@requires(ADMIN)
@require_POST
def connection_test(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(AwsConnection, pk=pk)
    context: dict = {"connection": connection}
    try:
        context["identity"] = discovery.test_connection(connection)
    except errors.AwsError as exc:
        context["error"] = exc
    if request.htmx:
        return render(request, "aws/_test_result.html", context)
    if "error" in context:
        messages.error(request, f"Test failed. {context['error']}")
    else:
        messages.success(request, f"Connected to account {context['identity'].account}.")
    return redirect(connection)


@requires(ADMIN)
@require_POST
def connection_delete(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(AwsConnection, pk=pk)
    try:
        with transaction.atomic():
            connection.pipelines.filter(status=Pipeline.Status.REMOVED).delete()  # history only
            connection.delete()
    except ProtectedError:
        messages.error(request, "Pipelines use this connection; tear them down first.")
        return redirect(connection)
    messages.success(request, f"Deleted the AWS connection {connection.name}.")
    return redirect("aws:connections")


# --- Pipeline wizard: console/wizard.py's mechanism -----------------------------------------------


def _lookup(run: Run, what: str, find) -> tuple[list, errors.AwsError | None]:
    """A list the user waits for (streams, buckets) with the state's connection, or the error."""

    def compute():
        try:
            return find(connect(_connection(run.state))), None
        except Exception as exc:  # shown on the page: bad credentials, no network, access denied
            return [], errors.describe(exc)

    return run.cached(what, compute)


def _connection(state: dict) -> AwsConnection:
    return get_object_or_404(AwsConnection, pk=state["connection_id"])


def _source(run: Run) -> dict:
    """The connections, the one chosen and its tables (None when they could not be listed)."""

    def compute():
        all_connections = list(AwsConnection.objects.all())
        if not all_connections:
            return {"no_connections": True}
        request = run.request
        chosen = (
            request.POST.get("connection") or request.GET.get("connection") or run.state.get("connection_id")
        )
        connection = next((c for c in all_connections if str(c.pk) == str(chosen)), all_connections[0])
        tables, error = None, None
        try:
            tables = discovery.list_tables(connect(connection))
        except Exception as exc:  # shown on the page: bad credentials, no network, access denied
            error = errors.describe(exc)
        return {"connections": all_connections, "connection": connection, "tables": tables, "error": error}

    return run.cached("source", compute)


def _source_form(run: Run, data) -> forms.SourceForm | None:
    found = _source(run)
    if "connection" not in found:
        return None
    tables = found["tables"]
    return forms.SourceForm(
        data,
        initial={"connection": found["connection"].pk, "table": run.state.get("table")},
        tables=[t.name for t in tables] if tables is not None else None,
    )


def _source_context(run: Run, form) -> dict:
    selected = (form["table"].value() if form else None) or run.state.get("table")
    return {**_source(run), "selected": selected}


def _source_tables(run: Run) -> HttpResponse | None:
    """Another connection chosen (htmx): its tables alone."""
    if "connection" not in run.request.GET:
        return None
    step = run.wizard.by_name["source"]
    return render(run.request, "aws/wizard/_source.html", run.wizard.context(run, step))


def _save_source(run: Run, form) -> dict | None:
    found = _source(run)
    if form is None or found["tables"] is None:
        return {}
    table = next(t for t in found["tables"] if t.name == form.cleaned_data["table"])
    connection = found["connection"]
    if run.state.get("table") != table.name or run.state.get("connection_id") != connection.pk:
        run.state = {}  # a different source: the later choices no longer apply
    run.state.update(
        connection_id=connection.pk, table=table.name, table_arn=table.arn, key_schema=table.key_schema
    )
    run.save()
    return None


def _stream_form(run: Run, data) -> forms.StreamForm:
    state = run.state
    new = state.get("stream_new", True)
    initial = {
        "mode": "new" if new else "existing",
        "new_name": (state.get("stream_name") if new else None)
        or forms.clean_name(f"{state['table']}-cdc", limit=128),
        "existing_name": None if new else state.get("stream_name"),
    }
    streams, _ = _lookup(run, "streams", discovery.list_streams)
    return forms.StreamForm(data, initial=initial, streams=[s.name for s in streams])


def _stream_context(run: Run, form) -> dict:
    streams, error = _lookup(run, "streams", discovery.list_streams)
    return {"streams": streams, "error": error, "connection": _connection(run.state), "state": run.state}


def _save_stream(run: Run, form) -> dict | None:
    if _lookup(run, "streams", discovery.list_streams)[1] is not None:
        return {}
    run.state.update(
        stream_name=form.cleaned_data["stream_name"], stream_new=form.cleaned_data["mode"] == "new"
    )
    run.save()
    return None


def _firehose_initial(pool: DataPool, state: dict) -> dict:
    firehose_name = state.get("firehose_name") or forms.clean_name(f"{state['table']}-to-shoal", limit=64)
    return {
        "firehose_name": firehose_name,
        "http_endpoint_name": state.get("http_endpoint_name") or f"Shoal {pool.name}"[:256],
        "endpoint_url": state.get("endpoint_url") or pool.endpoint_url(),
        "retry_duration_s": state.get("retry_duration_s", 7200),
        "content_encoding": state.get("content_encoding", "NONE"),
        "buffer_size_mib": state.get("buffer_size_mib", 1),
        "buffer_interval_s": state.get("buffer_interval_s", 60),
        "bucket_mode": "new" if state.get("bucket_new", True) else "existing",
        "new_bucket": state.get("bucket_name")
        if state.get("bucket_new", True) and state.get("bucket_name")
        else forms.default_bucket_name(state["table"]),
        "existing_bucket": None if state.get("bucket_new", True) else state.get("bucket_name"),
        "role_name": state.get("role_name") or forms.clean_name(f"shoal-firehose-{firehose_name}", limit=64),
    }


def _firehose_form(run: Run, data) -> forms.FirehoseForm:
    return forms.FirehoseForm(
        data,
        initial=_firehose_initial(run.kwargs["pool"], run.state),
        emulator=_connection(run.state).is_emulator,
        buckets=_lookup(run, "buckets", discovery.list_buckets)[0],
    )


def _firehose_context(run: Run, form) -> dict:
    buckets, error = _lookup(run, "buckets", discovery.list_buckets)
    return {"buckets": buckets, "error": error, "connection": _connection(run.state), "state": run.state}


def _save_firehose(run: Run, form) -> None:
    data = form.cleaned_data
    run.state.update(
        {k: data[k] for k in form.fields if k not in ("bucket_mode", "new_bucket", "existing_bucket")},
        bucket_name=data["bucket_name"],
        bucket_new=data["bucket_mode"] == "new",
    )
    run.save()


PIPELINE_FIELDS = (
    "stream_name",
    "stream_new",
    "bucket_name",
    "bucket_new",
    "role_name",
    "firehose_name",
    "http_endpoint_name",
    "endpoint_url",
    "buffer_size_mib",
    "buffer_interval_s",
    "retry_duration_s",
    "content_encoding",
)


def _create(run: Run, form) -> HttpResponse:
    state = run.state
    pipeline = pipelines.create_pipeline(
        run.kwargs["pool"],
        _connection(state),
        user=run.request.user,
        table_name=state["table"],
        table_arn=state.get("table_arn", ""),
        **{k: state[k] for k in PIPELINE_FIELDS},
    )
    run.reset()
    messages.success(run.request, "Creating the pipeline. Each step appears below as it completes.")
    return run.wizard.leave(run, pipeline.get_absolute_url())


class ConnectWizard(wizard.Wizard):
    name = "aws"
    heading = "Connect DynamoDB"
    nav = "pools"
    notice_template = "aws/wizard/_notice.html"
    steps = (
        Step(
            "source",
            "Choose the DynamoDB table",
            "aws/wizard/source.html",
            label="Table",
            form=_source_form,
            save=_save_source,
            context=_source_context,
            done=lambda run: "table" in run.state,
            fragment=_source_tables,
        ),
        Step(
            "stream",
            "Kinesis data stream",
            "aws/wizard/stream.html",
            label="Kinesis stream",
            form=_stream_form,
            save=_save_stream,
            context=_stream_context,
            done=lambda run: "stream_name" in run.state,
        ),
        Step(
            "firehose",
            "Firehose stream to this pool",
            "aws/wizard/firehose.html",
            label="Firehose",
            form=_firehose_form,
            save=_save_firehose,
            context=_firehose_context,
            done=lambda run: "firehose_name" in run.state,
        ),
        Step(
            "review",
            "Review and create",
            "aws/wizard/review.html",
            label="Review",
            save=_create,
            context=lambda run, form: {"state": run.state, "connection": _connection(run.state)},
        ),
    )

    def session_key(self, run: Run) -> str:
        return f"aws-wizard-{run.kwargs['pool'].pk}"

    def url(self, run: Run, step: str) -> str:
        name = run.kwargs["pool"].name
        if step == "source":
            return reverse("aws:connect", args=[name])
        return reverse("aws:connect_step", args=[name, step])

    def exit(self, run: Run) -> tuple[str, str]:
        pool = run.kwargs["pool"]
        return pool.name, pool.get_absolute_url()

    def page_context(self, run: Run) -> dict:
        return {
            "pool": run.kwargs["pool"],
            "intro": "Shoal does Steps 1 and 3 of the guide for you: the table streams into Kinesis, "
            "and a Firehose stream delivers to this pool.",
            "url_problem": delivery_url_problem(settings.PUBLIC_BASE_URL),
            "precision": STREAMING_PRECISION,
        }


WIZARD = ConnectWizard()


@requires(ADMIN)
def connect_wizard(request: HtmxHttpRequest, name: str, step: str = "source") -> HttpResponse:
    pool = get_object_or_404(DataPool, name=name)
    if not getattr(pool, "receives_firehose", True):
        messages.error(request, "This pool is filled by a Materialized View, not by Firehose.")
        return redirect(pool)
    current = pool.aws_pipelines.current()
    if current is not None:
        messages.info(request, "This pool already has an AWS pipeline.")
        return redirect(current)
    return WIZARD.dispatch(request, step, pool=pool)


# --- Pipeline page ------------------------------------------------------------------------------


def _pipeline(pk: int) -> Pipeline:
    return get_object_or_404(Pipeline.objects.select_related("pool", "connection"), pk=pk)


def _steps_context(pipeline: Pipeline) -> dict:
    steps = pipeline.phase_steps()
    return {
        "pipeline": pipeline,
        "steps": steps,
        "percent": pipelines.progress(steps),
        "failed_step": next((s for s in steps if s.state == "failed"), None),
    }


@requires(VIEWER)
def pipeline_detail(request: HttpRequest, pk: int) -> HttpResponse:
    pipeline = _pipeline(pk)
    _maybe_check(pipeline)
    context = {
        **_steps_context(pipeline),
        **_status_context(pipeline),
        "url_problem": delivery_url_problem(settings.PUBLIC_BASE_URL),
        "relay_alive": sandbox.relay_alive() if pipeline.connection.is_emulator else None,
        "teardown_form": forms.TeardownForm(),
        **_snapshot_context(pipeline),
    }
    return render(request, "aws/pipeline.html", context)


@requires(VIEWER)
def pipeline_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The steps and progress bar; polled by htmx every second while a phase runs."""
    pipeline = _pipeline(pk)
    response = render(request, "aws/_steps.html", _steps_context(pipeline))
    if request.htmx and request.GET.get("was") == "running" and not pipeline.running:
        response["HX-Refresh"] = "true"  # finished: reload so that the rest of the page follows
    return response


@requires(ADMIN)
@require_POST
def pipeline_retry(request: HttpRequest, pk: int) -> HttpResponse:
    pipeline = _pipeline(pk)
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
    from pools.aws.tasks import check_pipeline

    Pipeline.objects.filter(pk=pipeline.pk).update(check_requested_at=now)
    pipeline.check_requested_at = now
    try:
        check_pipeline.delay(pipeline.pk)
    except Exception as exc:
        log.warning("cannot queue a check of pipeline %s: %s", pipeline.pk, exc)


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
    pipeline = _pipeline(pk)
    return render(request, "aws/_status.html", _status_context(pipeline))


@requires(EDITOR)
@require_POST
def pipeline_check(request: HttpRequest, pk: int) -> HttpResponse:
    pipeline = _pipeline(pk)
    _maybe_check(pipeline, force=True)
    if request.htmx:
        return render(request, "aws/_status.html", _status_context(pipeline))
    return redirect(pipeline)


@requires(EDITOR)
@require_POST
def pipeline_replay(request: HttpRequest, pk: int) -> HttpResponse:
    from pools.aws.tasks import replay_failed_deliveries

    pipeline = _pipeline(pk)
    Pipeline.objects.filter(pk=pk).update(replay_requested_at=timezone.now())
    try:
        replay_failed_deliveries.delay(pipeline.pk)
    except Exception as exc:
        messages.error(request, f"Could not queue the replay (is Redis running?): {exc}")
    else:
        messages.success(request, "Replaying the failed deliveries into the pool; the result appears below.")
    return redirect(pipeline)


@requires(ADMIN)
@require_POST
def pipeline_push_endpoint(request: HttpRequest, pk: int) -> HttpResponse:
    from pools.aws.tasks import push_firehose_endpoint

    pipeline = _pipeline(pk)
    try:
        push_firehose_endpoint.delay(pipeline.pk)
    except Exception as exc:
        messages.error(request, f"Could not queue the update (is Redis running?): {exc}")
    else:
        messages.success(
            request, "Sending the pool's current endpoint URL and access key to the Firehose stream."
        )
    return redirect(pipeline)


@requires(ADMIN)
def pipeline_teardown(request: HttpRequest, pk: int) -> HttpResponse:
    pipeline = _pipeline(pk)
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
    pipeline = _pipeline(pk)
    if not pipeline.connection.is_emulator:
        messages.error(request, "Sample orders are for the local sandbox only.")
        return redirect(pipeline)
    try:
        order = sandbox.put_sample_order(connect(pipeline.connection), pipeline.table_name)
    except Exception as exc:
        messages.error(request, f"Could not put a sample order: {errors.describe(exc)}")
    else:
        messages.success(
            request,
            f"Put order {order['order_id']} ({order['taqueria']}, {order['total_price']}) into "
            f"{pipeline.table_name}. The sandbox relay delivers the change within seconds: see Preview "
            f"Data on the pool page.",
        )
    return redirect(pipeline)


# --- Initial snapshot ("Backfill existing items") ------------------------------------------------


class SnapshotForm(django_forms.Form):
    total_segments = django_forms.IntegerField(
        label="Parallel segments",
        min_value=1,
        max_value=snapshots.MAX_SEGMENTS,
        initial=4,
        help_text="Scan segments read at once (1–16).",
    )
    max_rcu_per_second = django_forms.FloatField(
        label="Read-capacity budget",
        min_value=0,
        max_value=1_000_000,
        initial=100,
        help_text="RCU per second for the whole scan; 0 for no limit.",
    )
    page_limit = django_forms.IntegerField(
        label="Items per page",
        min_value=1,
        max_value=100_000,
        required=False,
        help_text="Scan Limit; empty: as many as fit in 1 MB.",
    )


def _snapshot_context(pipeline: Pipeline, form: SnapshotForm | None = None) -> dict:
    snapshot = pipeline.snapshots.first()
    interrupted = bool(snapshot and snapshots.interrupted(snapshot))
    running = bool(snapshot and snapshot.status in (Snapshot.Status.PENDING, Snapshot.Status.RUNNING))
    return {
        "pipeline": pipeline,
        "snapshot": snapshot,
        "snapshot_ready": snapshots.streaming_ready(pipeline),
        "snapshot_running": running and not interrupted,
        "snapshot_interrupted": interrupted,
        "snapshot_resumable": bool(
            snapshot and (interrupted or snapshot.status in (Snapshot.Status.FAILED, Snapshot.Status.PAUSED))
        ),
        "snapshot_form": form or SnapshotForm(),
    }


def _queue_snapshot(request, snapshot: Snapshot) -> bool:
    from pools.aws.tasks import run_snapshot

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
    return render(request, "aws/_snapshot.html", _snapshot_context(_pipeline(pk)))


def _snapshot_answer(request: HttpRequest, pipeline) -> HttpResponse:
    """After a snapshot action: the card again (htmx), or back to it on the pipeline page."""
    if request.htmx:
        return render(request, "aws/_snapshot.html", _snapshot_context(pipeline))
    return redirect(f"{pipeline.get_absolute_url()}#snapshot")


@requires(EDITOR)
@require_POST
def snapshot_start(request: HttpRequest, pk: int) -> HttpResponse:
    pipeline = _pipeline(pk)
    form = SnapshotForm(request.POST)
    if not form.is_valid():
        if request.htmx:
            return render(request, "aws/_snapshot.html", _snapshot_context(pipeline, form))
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
    pipeline = _pipeline(pk)
    snapshot = pipeline.snapshots.first()
    if snapshot is None or not _snapshot_context(pipeline)["snapshot_resumable"]:
        messages.info(request, "There is no stopped backfill to resume.")
    elif _queue_snapshot(request, snapshot):
        messages.success(request, "Resuming the backfill from the last page each segment saved.")
    return _snapshot_answer(request, pipeline)


@requires(EDITOR)
@require_POST
def snapshot_pause(request: HttpRequest, pk: int) -> HttpResponse:
    pipeline = _pipeline(pk)
    Snapshot.objects.filter(
        pipeline=pipeline, status__in=[Snapshot.Status.PENDING, Snapshot.Status.RUNNING]
    ).update(pause_requested=True)
    Snapshot.objects.filter(pipeline=pipeline, status=Snapshot.Status.PENDING).update(
        status=Snapshot.Status.PAUSED
    )
    return _snapshot_answer(request, pipeline)
