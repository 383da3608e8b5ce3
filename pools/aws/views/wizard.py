"""The "Connect DynamoDB" wizard of a pool: choose the table, the Kinesis stream, the Firehose
stream and its bucket and role, review, then create the pipeline.

Look-ups the user waits for (list tables, streams and buckets) run here with the short timeouts of
clients.py; creating runs in the `default` worker.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from console.roles import ADMIN, requires
from pools.aws import discovery, errors, forms, pipelines
from pools.aws.clients import connect
from pools.aws.models import STREAMING_PRECISION, AwsConnection, delivery_url_problem
from pools.models import DataPool

WIZARD_STEPS = [
    ("source", "Table"),
    ("stream", "Kinesis stream"),
    ("firehose", "Firehose"),
    ("review", "Review"),
]


def _wizard_key(pool: DataPool) -> str:
    return f"aws-wizard-{pool.pk}"


def _wizard_context(request, pool: DataPool, step: str, **extra) -> dict:
    names = [s for s, _ in WIZARD_STEPS]
    return {
        "pool": pool,
        "step": step,
        "steps": WIZARD_STEPS,
        "step_index": names.index(step),
        "url_problem": delivery_url_problem(settings.PUBLIC_BASE_URL),
        "precision": STREAMING_PRECISION,
        **extra,
    }


@requires(ADMIN)
def connect_wizard(request: HttpRequest, name: str, step: str = "source") -> HttpResponse:
    pool = get_object_or_404(DataPool, name=name)
    if not getattr(pool, "receives_firehose", True):
        messages.error(request, "This pool is filled by a Materialized View, not by Firehose.")
        return redirect(pool)
    current = pool.aws_pipelines.current()
    if current is not None:
        messages.info(request, "This pool already has an AWS pipeline.")
        return redirect(current)
    if step not in dict(WIZARD_STEPS):
        return redirect("aws:connect", name=pool.name)
    state = request.session.get(_wizard_key(pool), {})
    if step != "source" and "table" not in state:
        return redirect("aws:connect", name=pool.name)
    if step in ("firehose", "review") and "stream_name" not in state:
        return redirect("aws:connect_step", name=pool.name, step="stream")
    if step == "review" and "firehose_name" not in state:
        return redirect("aws:connect_step", name=pool.name, step="firehose")
    handler = {
        "source": _step_source,
        "stream": _step_stream,
        "firehose": _step_firehose,
        "review": _step_review,
    }
    return handler[step](request, pool, state)


def _save_state(request, pool: DataPool, state: dict, next_step: str) -> HttpResponse:
    request.session[_wizard_key(pool)] = state
    return redirect("aws:connect_step", name=pool.name, step=next_step)


def _step_source(request, pool: DataPool, state: dict) -> HttpResponse:
    all_connections = list(AwsConnection.objects.all())
    if not all_connections:
        return render(
            request, "aws/wizard.html", _wizard_context(request, pool, "source", no_connections=True)
        )
    chosen_id = request.POST.get("connection") or request.GET.get("connection") or state.get("connection_id")
    connection = next((c for c in all_connections if str(c.pk) == str(chosen_id)), all_connections[0])
    tables, error = None, None
    try:
        tables = discovery.list_tables(connect(connection))
    except Exception as exc:  # shown on the page: bad credentials, no network, access denied
        error = errors.describe(exc)
    form = forms.SourceForm(
        request.POST or None,
        initial={"connection": connection.pk, "table": state.get("table")},
        tables=[t.name for t in tables] if tables is not None else None,
    )
    if request.method == "POST" and tables is not None and form.is_valid():
        table = next(t for t in tables if t.name == form.cleaned_data["table"])
        if state.get("table") != table.name or state.get("connection_id") != connection.pk:
            state = {}  # a different source: the later choices no longer apply
        state.update(
            connection_id=connection.pk,
            table=table.name,
            table_arn=table.arn,
            key_schema=table.key_schema,
        )
        return _save_state(request, pool, state, "stream")
    context = _wizard_context(
        request,
        pool,
        "source",
        form=form,
        connections=all_connections,
        connection=connection,
        tables=tables,
        error=error,
        selected=form["table"].value() or state.get("table"),
    )
    template = "aws/_wizard_source.html" if request.htmx and request.method == "GET" else "aws/wizard.html"
    return render(request, template, context)


def _connection(state: dict) -> AwsConnection:
    return get_object_or_404(AwsConnection, pk=state["connection_id"])


def _step_stream(request, pool: DataPool, state: dict) -> HttpResponse:
    connection = _connection(state)
    streams, error = [], None
    try:
        streams = discovery.list_streams(connect(connection))
    except Exception as exc:
        error = errors.describe(exc)
    initial = {
        "mode": "new" if state.get("stream_new", True) else "existing",
        "new_name": state.get("stream_name") if state.get("stream_new", True) else None,
        "existing_name": None if state.get("stream_new", True) else state.get("stream_name"),
    }
    if not initial["new_name"]:
        initial["new_name"] = forms.clean_name(f"{state['table']}-cdc", limit=128)
    form = forms.StreamForm(request.POST or None, initial=initial, streams=[s.name for s in streams])
    if request.method == "POST" and error is None and form.is_valid():
        state.update(
            stream_name=form.cleaned_data["stream_name"], stream_new=form.cleaned_data["mode"] == "new"
        )
        return _save_state(request, pool, state, "firehose")
    context = _wizard_context(
        request, pool, "stream", form=form, streams=streams, error=error, connection=connection, state=state
    )
    return render(request, "aws/wizard.html", context)


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


def _step_firehose(request, pool: DataPool, state: dict) -> HttpResponse:
    connection = _connection(state)
    buckets, error = [], None
    try:
        buckets = discovery.list_buckets(connect(connection))
    except Exception as exc:
        error = errors.describe(exc)
    form = forms.FirehoseForm(
        request.POST or None,
        initial=_firehose_initial(pool, state),
        emulator=connection.is_emulator,
        buckets=buckets,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        state.update(
            {k: data[k] for k in form.fields if k not in ("bucket_mode", "new_bucket", "existing_bucket")},
            bucket_name=data["bucket_name"],
            bucket_new=data["bucket_mode"] == "new",
        )
        return _save_state(request, pool, state, "review")
    context = _wizard_context(
        request, pool, "firehose", form=form, buckets=buckets, error=error, connection=connection, state=state
    )
    return render(request, "aws/wizard.html", context)


def _step_review(request, pool: DataPool, state: dict) -> HttpResponse:
    connection = _connection(state)
    if request.method == "POST":
        fields = {
            k: state[k]
            for k in (
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
        }
        pipeline = pipelines.create_pipeline(
            pool,
            connection,
            user=request.user,
            table_name=state["table"],
            table_arn=state.get("table_arn", ""),
            **fields,
        )
        request.session.pop(_wizard_key(pool), None)
        messages.success(request, "Creating the pipeline. Each step appears below as it completes.")
        return redirect(pipeline)
    return render(
        request,
        "aws/wizard.html",
        _wizard_context(request, pool, "review", state=state, connection=connection),
    )
