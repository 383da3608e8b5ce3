"""The Create Data Pool wizard: Step 2 of the DynamoDB guide, one URL per step (console/wizard.py).

The answers live in the session until the last step creates the pool; then only the new pool's id
(and the final form's one-time token) remains, for the done page and for a repeated submit.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.cache import never_cache

from console import wizard
from console.htmx import HtmxHttpRequest
from console.roles import EDITOR, requires
from console.wizard import Run, Step
from pools import forms, sources, table_settings
from pools.models import DataPool
from pools.services import create_pool

# The destination settings of Step 3 of the guide, shown on the done page.
FIREHOSE_SETTINGS = (
    ("Retry duration", "7200 seconds"),
    ("Content encoding", "Not enabled"),
    ("Buffer size", "1 MiB"),
)
MODES = [
    (
        table_settings.APPEND_ONLY,
        "Append-only data",
        "Records are only added, never changed. Fastest to write and to query.",
    ),
    (
        table_settings.MUTABLE,
        "Mutable data",
        "Records are updated or deleted: a newer row replaces the one with the same key.",
    ),
]


def _auth(run: Run) -> dict:
    return run.state.get("auth") or {}


def _settings(run: Run) -> table_settings.TableSettings | None:
    answers = run.state.get("table")
    if not answers:
        return None
    try:
        return table_settings.derive(**answers)
    except (TypeError, ValueError):  # answers saved by an older version of the wizard
        return None


def _token(run: Run) -> str:
    """The final form's token, one per run: a final form left over from another run is refused."""
    if not run.state.get("token"):
        run.state["token"] = secrets.token_urlsafe(16)
        run.save()
    return run.state["token"]


def _source_type(run: Run) -> sources.SourceType:
    """The chosen source type (the default until one is chosen)."""
    return sources.SOURCE_TYPES.get(run.state.get("source"), sources.get(sources.DEFAULT))


def _remember(run: Run, **answers) -> None:
    run.state.update(answers)
    run.save()


# --- Source ---------------------------------------------------------------------------------------


def _source_form(run: Run, data) -> forms.SourceForm:
    return forms.SourceForm(data, initial={"source": run.state.get("source", "dynamodb")})


def _source_context(run: Run, form) -> dict:
    chosen = form.data.get("source") if form.is_bound else None
    return {
        "sources": forms.SOURCES,
        "sources_soon": forms.SOURCES_SOON,
        "selected": chosen or run.state.get("source", "dynamodb"),
    }


# --- Authentication -------------------------------------------------------------------------------


def _auth_form(run: Run, data) -> forms.AuthForm:
    has_password = bool(_auth(run).get("password"))
    return forms.AuthForm(data, initial={"user": _auth(run).get("user", "")}, has_password=has_password)


def _save_auth(run: Run, form) -> None:
    password = form.cleaned_data["password"] or _auth(run)["password"]
    # The password waits here, in clear, until the pool is created (it is hashed there).
    _remember(run, auth={"user": form.cleaned_data["user"], "password": password})


# --- Table settings -------------------------------------------------------------------------------


def _table_form(run: Run, data) -> forms.TableForm:
    answers = run.state.get("table")
    initial = None
    if answers:
        initial = {
            "mode": answers["mode"],
            "unique": answers["unique"] or ["event_id"],
            "time_column": answers["time_column"] or "",
            "filters": answers["filters"],
            "version": answers["version"] or "",
        }
    return forms.TableForm(data, initial=initial)


def _table_context(run: Run, form) -> dict:
    return {"modes": MODES, "mode": form["mode"].value() or table_settings.APPEND_ONLY}


def _confirm_context(run: Run, form) -> dict:
    mode = run.state["table"]["mode"]
    return {
        "settings": _settings(run),
        "mutable": mode == table_settings.MUTABLE,
        "mode_label": table_settings.MODES[mode],
    }


# --- Name: the only step that writes anything but the session --------------------------------------


def _name_context(run: Run, form) -> dict:
    return {"token": _token(run), "settings": _settings(run), "auth_user": _auth(run).get("user")}


def _name_message(run: Run) -> HttpResponse | None:
    """Live validation of the name field as it is typed: just its message."""
    if run.request.htmx.trigger_name != "name":
        return None
    name = run.request.GET.get("name", "").strip()
    context = {"name": name, "errors": forms.check_name(name), "checked": True}
    response = render(run.request, "pools/wizard/_name_message.html", context)
    patch_vary_headers(response, ("HX-Request",))
    return response


def _created_by_this_run(run: Run, name: str) -> DataPool | None:
    """The pool named `name` if this run of the wizard made it (same, fresh Basic credentials)."""
    auth = _auth(run)
    if not name or not auth.get("password"):
        return None
    recent = timezone.now() - timedelta(hours=1)
    pool = DataPool.objects.filter(name=name, created_at__gte=recent).first()
    if pool and pool.check_basic_auth(auth["user"], auth["password"]):
        return pool
    return None


def _finish(run: Run, pool: DataPool) -> str:
    # Forget the answers (the password above all); keep what the done page and a repeat need.
    run.reset(created=pool.pk, token=run.state.get("token"))
    return "done"


def _name_taken_by_us(run: Run, form) -> str | None:
    # A second submit that raced the first finds the name taken by the pool the first made.
    pool = _created_by_this_run(run, run.request.POST.get("name", "").strip())
    return _finish(run, pool) if pool else None


def _create(run: Run, form) -> str | None:
    if run.request.POST.get("token") != _token(run):
        form.add_error(None, "This form was out of date; check the values and create the Data Pool again.")
        return None
    auth, name = _auth(run), form.cleaned_data["name"]
    try:
        pool = create_pool(
            name,
            description=form.cleaned_data["description"],
            basic_auth_user=auth["user"],
            basic_auth_password=auth["password"],
            **_settings(run).pool_fields(),
        )
    except (ValidationError, IntegrityError) as exc:
        pool = _created_by_this_run(run, name)
        if pool:
            return _finish(run, pool)
        if isinstance(exc, IntegrityError):
            exc = ValidationError(f"A Data Pool named {name!r} already exists.")
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"name": exc.messages}
        for field, messages in errors.items():
            form.add_error(field if field in form.fields else None, messages)
        return None
    return _finish(run, pool)


def _done_context(run: Run, form) -> dict:
    return {"pool": DataPool.objects.get(pk=run.state["created"]), "firehose": FIREHOSE_SETTINGS}


# --- The wizard -------------------------------------------------------------------------------------


class PoolWizard(wizard.Wizard):
    name = "pool"
    heading = "Create Data Pool"
    nav = "pools"
    steps = (
        Step(
            "source",
            "Select your data source",
            "pools/wizard/source.html",
            label="Source",
            form=_source_form,
            save=lambda run, form: _remember(run, source=form.cleaned_data["source"]),
            context=_source_context,
            done=lambda run: run.state.get("source") in sources.SOURCE_TYPES,
        ),
        Step(
            "schema",
            "Define schema",
            "pools/wizard/schema.html",
            label="Schema",
            # The defaults: the change events as they are.
            save=lambda run, form: _remember(run, schema=True),
            context=lambda run, form: {"columns": _source_type(run).columns},
            done=lambda run: run.state.get("schema") is True,
        ),
        Step(
            "auth",
            "Configure authentication",
            "pools/wizard/auth.html",
            label="Authentication",
            form=_auth_form,
            save=_save_auth,
            context=lambda run, form: {"has_password": bool(_auth(run).get("password"))},
            done=lambda run: bool(_auth(run).get("user") and _auth(run).get("password")),
            sensitive=True,
        ),
        Step(
            "table",
            "Table settings",
            "pools/wizard/table.html",
            label="Table settings",
            form=_table_form,
            # Changed settings are confirmed again.
            save=lambda run, form: _remember(run, table=form.answers(), confirmed=False),
            context=_table_context,
            done=lambda run: _settings(run) is not None,
        ),
        Step(
            "confirm",
            "Confirm table settings",
            "pools/wizard/confirm.html",
            label="Table settings",
            save=lambda run, form: _remember(run, confirmed=True),
            context=_confirm_context,
            done=lambda run: run.state.get("confirmed") is True,
        ),
        Step(
            "name",
            "Name your Data Pool",
            "pools/wizard/name.html",
            label="Name",
            form=lambda run, data: forms.NameForm(data),
            save=_create,
            invalid=_name_taken_by_us,
            context=_name_context,
            fragment=_name_message,
        ),
        Step(
            "done",
            "Your Data Pool is ready",
            "pools/wizard/done.html",
            label="HTTP endpoint",
            context=_done_context,
            final=True,
            sensitive=True,
        ),
    )

    def url(self, run: Run, step: str) -> str:
        return reverse("pools:create_step", args=[step])

    def exit(self, run: Run) -> tuple[str, str]:
        return "Data Pools", reverse("pools:list")

    def start(self, request: HtmxHttpRequest, **kwargs) -> HttpResponse:
        run = Run(self, request, kwargs)
        if request.method == "GET" and "created" in run.state:
            run.reset()  # the last run has finished: start afresh
        return super().start(request, **kwargs)

    def steps_for(self, run: Run) -> tuple[Step, ...]:
        """The steps the chosen source type goes through (pools/sources/), then the done page."""
        names = (*_source_type(run).wizard_steps, "done")
        return tuple(self.by_name[name] for name in names)

    def redirect_for(self, run: Run, step: str) -> str | None:
        created = run.state.get("created")
        if created is not None:
            # This run has finished: the first step asked for again starts a new pool; any other
            # step (a repeated final submit too) shows the done page.
            if step != "done":
                if run.request.method == "GET" and step == self.order(run)[0]:
                    run.reset()
                    return super().redirect_for(run, step)
                return "done"
            if DataPool.objects.filter(pk=created).exists():
                return None
            run.reset()  # deleted since
        return super().redirect_for(run, step)


WIZARD = PoolWizard()


@requires(EDITOR)
@never_cache
def start(request: HtmxHttpRequest) -> HttpResponse:
    """GET: resume the wizard where it was left, or start afresh; POST: cancel it."""
    return WIZARD.start(request)


@requires(EDITOR)
@never_cache
def step(request: HtmxHttpRequest, step: str) -> HttpResponse:
    return WIZARD.dispatch(request, step)
