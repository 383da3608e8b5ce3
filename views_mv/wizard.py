"""The Create Materialized View wizard: Step 4 of the DynamoDB guide, one URL per step
(console/wizard.py). The answers live in the session until the last step creates the view."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.urls import reverse

from console import wizard
from console.htmx import HtmxHttpRequest
from console.roles import EDITOR, requires
from console.wizard import Run, Step
from pools import sources, table_settings
from views_mv import forms, services

# --- SQL ------------------------------------------------------------------------------------------


def _sql_form(run: Run, data) -> forms.SqlForm:
    return forms.SqlForm(data, initial={"sql": run.state.get("sql", {}).get("sql", "")})


def _save_sql(run: Run, form) -> dict | None:
    try:
        plan = services.inspect(form.cleaned_data["sql"], user=f"user:{run.request.user.pk}")
    except ValidationError as exc:
        form.add_error("sql", exc)
        return None
    if run.request.POST.get("action") == "test":  # run it on a few rows, stay on the step
        names = [c["name"] for c in plan.columns]
        rows = [list(zip(names, row, strict=False)) for row in plan.rows]
        return {"plan": plan, "columns": plan.columns, "rows": rows}
    # A new query: the later answers no longer apply.
    run.reset(sql=_sql_state(plan))
    return None


# --- Destination ----------------------------------------------------------------------------------


def _suggested(run: Run) -> tuple[str, str]:
    """The guide's names for the target pool and the view, from the source's DynamoDB table."""
    source = services.DataPool.objects.filter(name=run.state["sql"]["source"]).first()
    if source is None:
        return "", ""
    return services.suggested_names(source, run.state["sql"].get("table_name", ""))


def _destination_form(run: Run, data) -> forms.DestinationForm:
    initial = run.state.get("destination") or {"kind": "new", "new_name": _suggested(run)[0]}
    return forms.DestinationForm(data, initial=initial, source=run.state["sql"]["source"])


def _save_destination(run: Run, form) -> str:
    data = form.cleaned_data
    run.state["destination"] = {
        "kind": data["kind"],
        "new_name": data["new_name"],
        "existing": data["existing"].name if data["existing"] else "",
    }
    run.state.pop("table", None)
    existing = data["kind"] == forms.DestinationForm.EXISTING
    if existing:  # the pool's table exists: nothing to set
        run.state["table"] = {"existing": True}
    run.save()
    return "confirm" if existing else "table"


# --- Table settings -------------------------------------------------------------------------------


def _columns(run: Run) -> dict[str, str]:
    return {c["name"]: c["type"] for c in run.state["sql"]["columns"]}


def _source(run: Run) -> services.DataPool | None:
    return services.DataPool.objects.filter(name=run.state["sql"]["source"]).first()


def _dynamodb(run: Run) -> bool:
    source = _source(run)
    return bool(source and sources.fed_by_source(source))


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


def _table_form(run: Run, data) -> forms.TableForm:
    columns = _columns(run)
    initial = (run.state.get("table") or {}).get("answers") or _suggest(columns)
    return forms.TableForm(data, columns=columns, dynamodb_source=_dynamodb(run), initial=initial)


VIEW_MODES = [
    (
        table_settings.APPEND_ONLY,
        "Append-only data",
        "Every row the view writes stays: a history, such as one row per change.",
    ),
    (
        table_settings.MUTABLE,
        "Mutable records",
        "A newer change of a record replaces the older one, and a deleted record disappears.",
    ),
]


def _table_context(run: Run, form) -> dict:
    return {
        "columns": run.state["sql"]["columns"],
        "dynamodb": _dynamodb(run),
        "explanation": services.versioning.EXPLANATION,
        "modes": VIEW_MODES,
        "mode": form["mode"].value() or table_settings.MUTABLE,
    }


def _save_table(run: Run, form) -> None:
    data = form.cleaned_data
    columns = _columns(run)
    types = {name: data[f"type__{name}"].strip() for name in columns}
    mutable = data["mode"] == table_settings.MUTABLE
    try:
        services.check_key_values(
            run.state["sql"]["columns"],
            unique=data["unique"] if mutable else [],
            time_column=data["time_column"] or None,
            filters=data["filters"],
            nullable_confirmed=data["nullable_keys"],
        )
        plan = _plan(run)
        keys = set(data["unique"]) if mutable else set()
        keys |= set(data["filters"]) | ({data["time_column"]} if data["time_column"] else set())
        services.check_type_changes(plan, types, keys=keys, accepted=data["accept_type_changes"])
        settings, engine, deleted = services.describe_target(
            _source(run),
            services.targets.key_types(types, plan.columns),
            mutable=mutable,
            unique=data["unique"],
            time_column=data["time_column"] or None,
            filters=data["filters"],
            version=data["version"] or None,
        )
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return
    run.state["table"] = {
        "answers": {k: v for k, v in data.items() if not k.startswith("type__")},
        "types": types,
        "engine": engine,
        "deleted": deleted,
        "label": settings.engine_label,
        "sorting_key": settings.sorting_key,
        "partition_key": settings.partition_key,
        "timestamp_column": settings.timestamp_column,
    }
    run.save()


def _plan(run: Run) -> services.Plan:
    """The plan the SQL step saved (services.DataPool.DoesNotExist if its source is gone)."""
    state = run.state["sql"]
    return services.Plan(
        sql=state["sql"],
        source=services.DataPool.objects.get(name=state["source"]),
        columns=state["columns"],
        formatted=state.get("formatted", ""),
        effective=state.get("effective", ""),
    )


# --- Confirm and create ---------------------------------------------------------------------------


def _confirm_form(run: Run, data) -> forms.ConfirmForm:
    return forms.ConfirmForm(data, initial={"name": _suggested(run)[1], "backfill": True})


def _create(run: Run, form) -> HttpResponse | None:
    data, state = form.cleaned_data, run.state
    table, dest, answers = state["table"], state["destination"], state["table"].get("answers") or {}
    try:
        plan = _plan(run)
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
            accept_type_changes=bool(answers.get("accept_type_changes")),
        )
    except ValidationError as exc:
        form.add_error(None, exc)
        return None
    run.reset()
    messages.success(
        run.request, f"Materialized View {mv.name} created; {mv.target_pool.name} fills as data lands."
    )
    return run.wizard.leave(run, mv.get_absolute_url())


# --- Prefilled: "Transform into an entity pool" -----------------------------------------------------


def prefill(request: HtmxHttpRequest, plan: services.Plan, answers: dict) -> str:
    """Answer every step but the last as the guide does, for `plan` (already tested): the new pool
    and view named as the guide suggests, the table settings from `answers`. Returns the URL of
    the step to show: the last one (one Create), or the first whose answer does not hold."""
    run = Run(WIZARD, request, {})
    run.reset(sql=_sql_state(plan) | {"rows": _test_rows(plan)})
    pool_name = _suggested(run)[0]
    if services.DataPool.objects.filter(name__iexact=pool_name).exists():
        return run.url("destination")  # the user chooses: write into it, or another name
    run.state["destination"] = {"kind": forms.DestinationForm.NEW, "new_name": pool_name, "existing": ""}
    form = _table_form(run, {**answers, **{f"type__{c['name']}": c["type"] for c in plan.columns}})
    if form.is_valid():
        _save_table(run, form)
    if form.errors or "table" not in run.state:
        run.save()
        return run.url("table")
    return run.url("confirm")


def _sql_state(plan: services.Plan) -> dict:
    return {
        "sql": plan.sql,
        "source": plan.source.name,
        "columns": plan.columns,
        "formatted": plan.formatted,
        "effective": plan.effective,
        "table_name": plan.table_name,
    }


def _test_rows(plan: services.Plan) -> list:
    """The Test's first rows, as text, for the last step to show."""
    names = [c["name"] for c in plan.columns]

    def shown(value) -> str:
        return "NULL" if value is None else value if isinstance(value, str) else json.dumps(value)

    return [[[n, shown(v)] for n, v in zip(names, row, strict=False)] for row in plan.rows[:5]]


# --- The wizard -------------------------------------------------------------------------------------


class ViewWizard(wizard.Wizard):
    name = "mv"
    heading = "Create Materialized View"
    nav = "mv"
    steps = (
        Step(
            "sql",
            "Define the view with SQL",
            "views_mv/wizard/sql.html",
            label="SQL",
            form=_sql_form,
            save=_save_sql,
            done=lambda run: "sql" in run.state,
        ),
        Step(
            "destination",
            "Where do the results go?",
            "views_mv/wizard/destination.html",
            label="Destination",
            form=_destination_form,
            save=_save_destination,
            context=lambda run, form: {"source": run.state["sql"]["source"]},
            done=lambda run: "destination" in run.state,
        ),
        Step(
            "table",
            "Table settings",
            "views_mv/wizard/table.html",
            label="Table settings",
            form=_table_form,
            save=_save_table,
            context=_table_context,
            done=lambda run: "table" in run.state,
        ),
        Step(
            "confirm",
            "Confirm and create",
            "views_mv/wizard/confirm.html",
            label="Create",
            form=_confirm_form,
            save=_create,
            context=lambda run, form: {"state": run.state, "source": run.state["sql"]["source"]},
        ),
    )

    def url(self, run: Run, step: str) -> str:
        return reverse("views_mv:create_step", args=[step])

    def exit(self, run: Run) -> tuple[str, str]:
        return "Materialized Views", reverse("views_mv:list")


WIZARD = ViewWizard()


@requires(EDITOR)
def create(request: HtmxHttpRequest) -> HttpResponse:
    """GET: resume the wizard (from the start with ?restart); POST: cancel it."""
    return WIZARD.start(request)


@requires(EDITOR)
def create_step(request: HtmxHttpRequest, step: str) -> HttpResponse:
    return WIZARD.dispatch(request, step)
