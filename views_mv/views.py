"""Materialized View pages: list, detail with backfill progress, and the create wizard.

The wizard keeps its answers in the session (one key); every step is its own URL and a plain form,
boosted by htmx so that only the step region is swapped.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from console.htmx import HtmxHttpRequest
from console.roles import EDITOR, VIEWER, requires
from pools import table_settings
from pools.aws.models import AwsConnection
from views_mv import forms, services, tasks
from views_mv.models import MaterializedView, ReplicaCheck

SESSION_KEY = "mv_wizard"
STEPS = [("sql", "SQL"), ("destination", "Destination"), ("table", "Table settings"), ("confirm", "Create")]


@requires(VIEWER)
def mv_list(request: HttpRequest) -> HttpResponse:
    views = MaterializedView.objects.select_related("source_pool", "target_pool", "backfill")
    return render(request, "views_mv/list.html", {"views": views})


PARTS = {"progress": "views_mv/_progress.html", "replica": "views_mv/_replica.html"}


@requires(VIEWER)
def mv_detail(request: HtmxHttpRequest, name: str) -> HttpResponse:
    mv = get_object_or_404(MaterializedView.objects.select_related("source_pool", "target_pool"), name=name)
    template = PARTS.get(request.GET.get("part", "")) if request.htmx else None
    context = {
        "mv": mv,
        "backfill": getattr(mv, "backfill", None),
        "check": mv.replica_checks.first(),
        "pipelines": mv.source_pool.aws_pipelines.select_related("connection"),
        "connections": AwsConnection.objects.all(),
        "failures": mv.failures.filter(resolved_at__isnull=True).select_related("delivery")[:100],
        "failure_count": mv.failures.filter(resolved_at__isnull=True).count(),
    }
    return render(request, template or "views_mv/detail.html", context)


@requires(EDITOR)
@require_POST
def mv_retry_failures(request: HttpRequest, name: str) -> HttpResponse:
    mv = get_object_or_404(MaterializedView, name=name)
    tasks.warehouse_retry_view_failures.delay(mv.pk)
    messages.success(request, "Running the view again over the rows it could not transform.")
    return redirect(mv)


@requires(EDITOR)
@require_POST
def mv_edit_sql(request: HttpRequest, name: str) -> HttpResponse:
    mv = get_object_or_404(MaterializedView.objects.select_related("source_pool", "target_pool"), name=name)
    try:
        services.replace_sql(mv, request.POST.get("sql", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Saved: the view runs with this SQL from the next delivery.")
    return redirect(mv)


@requires(EDITOR)
@require_POST
def mv_replica_check(request: HttpRequest, name: str) -> HttpResponse:
    """Start comparing the view's pool with the DynamoDB table it replicates."""
    mv = get_object_or_404(MaterializedView, name=name)
    connection = AwsConnection.objects.filter(pk=request.POST.get("connection") or 0).first()
    table = request.POST.get("table", "").strip()
    if connection is None or not table:
        messages.error(request, "Choose the AWS connection and the DynamoDB table to compare with.")
        return redirect(mv)
    check = ReplicaCheck.objects.create(mv=mv, connection=connection, table_name=table)
    tasks.start_replica_check(check.pk)
    return redirect(mv)


@requires(EDITOR)
@require_POST
def mv_delete(request: HttpRequest, name: str) -> HttpResponse:
    mv = get_object_or_404(MaterializedView, name=name)
    delete_target = request.POST.get("delete_target") == "on"
    services.delete_mv(mv, delete_target=delete_target)
    kept = "" if delete_target else f" Its Data Pool {mv.target_pool.name} is kept."
    messages.success(request, f"Materialized View {mv.name} is being removed.{kept}")
    return redirect("views_mv:list")


@requires(EDITOR)
@require_POST
def mv_retry_backfill(request: HttpRequest, name: str) -> HttpResponse:
    mv = get_object_or_404(MaterializedView, name=name)
    tasks.warehouse_run_backfill.delay(mv.pk)
    return redirect(mv)


# --- the create wizard ------------------------------------------------------------------------


def _state(request) -> dict:
    return dict(request.session.get(SESSION_KEY) or {})


def _save(request, state: dict) -> None:
    request.session[SESSION_KEY] = state


def _render(request, step: str, context: dict) -> HttpResponse:
    return render(request, f"views_mv/wizard_{step}.html", {"steps": STEPS, "step": step, **context})


@requires(EDITOR)
def create(request: HttpRequest) -> HttpResponse:
    if request.GET.get("restart"):
        _save(request, {})
    return redirect("views_mv:create_step", "sql")


@requires(EDITOR)
def create_step(request: HttpRequest, step: str) -> HttpResponse:
    state = _state(request)
    needed = {"destination": "sql", "table": "destination", "confirm": "table"}
    if step in needed and needed[step] not in state:
        return redirect("views_mv:create_step", "sql" if "sql" not in state else needed[step])
    handler = {
        "sql": _sql_step,
        "destination": _destination_step,
        "table": _table_step,
        "confirm": _confirm_step,
    }.get(step)
    if handler is None:
        return redirect("views_mv:create_step", "sql")
    return handler(request, state)


def _sql_step(request, state):
    form = forms.SqlForm(request.POST or None, initial={"sql": state.get("sql", {}).get("sql", "")})
    context = {"form": form}
    if request.method == "POST" and form.is_valid():
        try:
            plan = services.inspect(form.cleaned_data["sql"])
        except ValidationError as exc:
            form.add_error("sql", exc)
        else:
            if request.POST.get("action") == "test":
                context["plan"] = plan
                context["columns"] = plan.columns
                context["rows"] = [
                    list(zip([c["name"] for c in plan.columns], r, strict=False)) for r in plan.rows
                ]
            else:
                state = {
                    "sql": {
                        "sql": plan.sql,
                        "source": plan.source.name,
                        "columns": plan.columns,
                        "formatted": plan.formatted,
                        "effective": plan.effective,
                        "table_name": plan.table_name,
                    }
                }
                _save(request, state)
                return redirect("views_mv:create_step", "destination")
    return _render(request, "sql", context)


def _destination_step(request, state):
    source = state["sql"]["source"]
    initial = state.get("destination") or {"kind": "new", "new_name": _suggested(state)[0]}
    form = forms.DestinationForm(request.POST or None, initial=initial, source=source)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        state["destination"] = {
            "kind": data["kind"],
            "new_name": data["new_name"],
            "existing": data["existing"].name if data["existing"] else "",
        }
        state.pop("table", None)
        if data["kind"] == forms.DestinationForm.EXISTING:
            state["table"] = {"existing": True}
            _save(request, state)
            return redirect("views_mv:create_step", "confirm")
        _save(request, state)
        return redirect("views_mv:create_step", "table")
    return _render(request, "destination", {"form": form, "source": source})


def _suggested(state) -> tuple[str, str]:
    source = services.DataPool.objects.filter(name=state["sql"]["source"]).first()
    if source is None:
        return "", ""
    return services.suggested_names(source, state["sql"].get("table_name", ""))


def _columns(state) -> dict[str, str]:
    return {c["name"]: c["type"] for c in state["sql"]["columns"]}


def _table_step(request, state):
    columns = _columns(state)
    saved = state.get("table") or {}
    initial = saved.get("answers") or _suggest(columns)
    source = services.DataPool.objects.filter(name=state["sql"]["source"]).first()
    dynamodb = bool(source and source.kind == services.DataPool.Kind.DYNAMODB)
    form = forms.TableForm(request.POST or None, columns=columns, dynamodb_source=dynamodb, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        types = {name: data[f"type__{name}"].strip() for name in columns}
        try:
            services.check_key_values(
                state["sql"]["columns"],
                unique=data["unique"] if data["mode"] == table_settings.MUTABLE else [],
                time_column=data["time_column"] or None,
                filters=data["filters"],
                nullable_confirmed=data["nullable_keys"],
            )
            settings, engine, deleted = services.describe_target(
                source,
                types,
                mutable=data["mode"] == table_settings.MUTABLE,
                unique=data["unique"],
                time_column=data["time_column"] or None,
                filters=data["filters"],
                version=data["version"] or None,
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            answers = {k: v for k, v in data.items() if not k.startswith("type__")}
            state["table"] = {
                "answers": answers,
                "types": types,
                "engine": engine,
                "deleted": deleted,
                "label": settings.engine_label,
                "sorting_key": settings.sorting_key,
                "partition_key": settings.partition_key,
                "timestamp_column": settings.timestamp_column,
            }
            _save(request, state)
            return redirect("views_mv:create_step", "confirm")
    return _render(
        request,
        "table",
        {
            "form": form,
            "columns": state["sql"]["columns"],
            "dynamodb": dynamodb,
            "explanation": services.versioning.EXPLANATION,
        },
    )


def _suggest(columns: dict[str, str]) -> dict:
    """Sensible answers for a flattened DynamoDB table: mutable, keyed by an *_id column."""
    keys = table_settings.key_columns(columns)
    ids = [c for c in keys if c.endswith("_id") or c == "id"][:1]
    times = table_settings.time_columns(columns)
    return {
        "mode": table_settings.MUTABLE,
        "unique": ids,
        "time_column": times[0] if times else "",
        "filters": [],
        "version": "",
    }


def _confirm_step(request, state):
    source = state["sql"]["source"]
    form = forms.ConfirmForm(
        request.POST or None,
        initial={"name": _suggested(state)[1], "backfill": True},
    )
    if request.method == "POST" and form.is_valid():
        data, table, dest = form.cleaned_data, state["table"], state["destination"]
        answers = table.get("answers") or {}
        try:
            plan = services.Plan(
                sql=state["sql"]["sql"],
                source=services.DataPool.objects.get(name=source),
                columns=state["sql"]["columns"],
                formatted=state["sql"].get("formatted", ""),
                effective=state["sql"].get("effective", ""),
            )
            mv = services.create_mv(
                data["name"],
                plan.sql,
                plan=plan,
                description=data["description"],
                target_pool=dest["existing"] or dest["new_name"],
                mutable=answers.get("mode") == table_settings.MUTABLE,
                unique=answers.get("unique") or [],
                time_column=answers.get("time_column") or None,
                filters=answers.get("filters") or [],
                version=answers.get("version") or None,
                column_types=table.get("types"),
                backfill=data["backfill"],
                nullable_keys=bool(answers.get("nullable_keys")),
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            _save(request, {})
            messages.success(
                request, f"Materialized View {mv.name} created; {mv.target_pool.name} fills as data lands."
            )
            if request.htmx:  # leave the wizard's region: a whole-page navigation
                return HttpResponseClientRedirect(mv.get_absolute_url())
            return redirect(mv)
    return _render(request, "confirm", {"form": form, "state": state, "source": source})
