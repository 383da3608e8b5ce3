"""The "Connect DynamoDB" wizard of a pool (console/wizard.py's mechanism): choose the table, the
Kinesis stream, the Firehose stream and its bucket and role, review, then create the pipeline.

Look-ups the user waits for (list tables, streams and buckets) run here with the short timeouts of
clients.py; creating runs in the `default` worker.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from console import wizard
from console.htmx import HtmxHttpRequest
from console.roles import ADMIN, requires
from console.wizard import Run, Step
from pools.aws import discovery, errors, forms, pipelines
from pools.aws.clients import connect
from pools.aws.models import STREAMING_PRECISION, AwsConnection, Pipeline, delivery_url_problem
from pools.models import DataPool


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


def streaming_to(connection: AwsConnection) -> dict[str, str]:
    """Tables of this connection that already stream to a pool (a pipeline not removed), by name:
    the wizard says so beside them, since a second pipeline would stream the same changes twice."""
    live = Pipeline.objects.filter(connection=connection).exclude(status=Pipeline.Status.REMOVED)
    return {p.table_name: p.pool.name for p in live.select_related("pool")}


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
        streaming = streaming_to(connection)
        for table in tables or []:
            table.streams_to = streaming.get(table.name, "")
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


def _delivery_form(run: Run, data) -> forms.DeliveryForm:
    state = run.state
    return forms.DeliveryForm(
        data,
        initial={
            "mode": state.get("delivery_mode", Pipeline.Mode.FIREHOSE),
            "start": state.get("pull_start", Pipeline.Start.OLDEST),
            "start_at": state.get("pull_start_at", ""),
        },
    )


def _delivery_context(run: Run, form) -> dict:
    return {
        "modes": forms.DELIVERY_MODES,
        "mode": run.state.get("delivery_mode", Pipeline.Mode.FIREHOSE),
        "url_problem": delivery_url_problem(settings.PUBLIC_BASE_URL),
        "starts": forms.PULL_STARTS,
        "start": form["start"].value() or Pipeline.Start.OLDEST,
        "state": run.state,
    }


def _save_delivery(run: Run, form) -> None:
    data = form.cleaned_data
    start_at = data["start_at"]
    run.state.update(
        delivery_mode=data["mode"],
        pull_start=data["start"],
        pull_start_at=start_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") if start_at else "",
    )
    run.save()


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
        delivery_mode=_mode(state),
        **_pull_start(state),
        **{k: state[k] for k in PIPELINE_FIELDS if k in state},
    )
    run.reset()
    messages.success(run.request, "Creating the pipeline. Each step appears below as it completes.")
    return run.wizard.leave(run, pipeline.get_absolute_url())


def _pull_start(state: dict) -> dict:
    start = state.get("pull_start") or Pipeline.Start.OLDEST
    at = state.get("pull_start_at") or ""
    when = datetime.fromisoformat(at).replace(tzinfo=UTC) if start == Pipeline.Start.AT and at else None
    return {"pull_start": start, "pull_start_at": when}


def _mode(state: dict) -> str:
    return state.get("delivery_mode", Pipeline.Mode.FIREHOSE)


# The steps each delivery mode asks for after the table and the mode.
MODE_STEPS = {
    Pipeline.Mode.FIREHOSE: ("stream", "firehose"),
    Pipeline.Mode.KINESIS: ("stream",),
    Pipeline.Mode.STREAMS: (),
}


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
            "delivery",
            "How changes reach Shoal",
            "aws/wizard/delivery.html",
            label="Delivery",
            form=_delivery_form,
            save=_save_delivery,
            context=_delivery_context,
            done=lambda run: "delivery_mode" in run.state,
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
            context=lambda run, form: {
                "state": run.state,
                "connection": _connection(run.state),
                "mode": _mode(run.state),
            },
        ),
    )

    def steps_for(self, run: Run) -> tuple[Step, ...]:
        wanted = {"source", "delivery", "review", *MODE_STEPS[_mode(run.state)]}
        return tuple(step for step in self.steps if step.name in wanted)

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
        pushed = _mode(run.state) == Pipeline.Mode.FIREHOSE
        return {
            "pool": run.kwargs["pool"],
            "intro": "Shoal does Steps 1 and 3 of the guide for you: the table streams into Kinesis, "
            "and a Firehose stream delivers to this pool, or Shoal reads the stream itself.",
            "url_problem": delivery_url_problem(settings.PUBLIC_BASE_URL) if pushed else "",
            "precision": STREAMING_PRECISION,
        }


WIZARD = ConnectWizard()


@requires(ADMIN)
def connect_wizard(request: HtmxHttpRequest, name: str, step: str = "source") -> HttpResponse:
    pool = get_object_or_404(DataPool, name=name)
    if not getattr(pool, "receives_deliveries", True):
        messages.error(request, "This pool is filled by a Materialized View, not by Firehose.")
        return redirect(pool)
    current = pool.aws_pipelines.current()
    if current is not None:
        messages.info(request, "This pool already has an AWS pipeline.")
        return redirect(current)
    return WIZARD.dispatch(request, step, pool=pool)
