"""The Create Data Pool wizard: Step 2 of the DynamoDB guide, one URL per step.

Every step is a full page on a normal request and the `#wizard-step` region on an htmx request
(history restores get the full page). The answers live in the session under one key until the
last step creates the pool; then only the new pool's id (and the final form's one-time token)
remains, for the done page and for a repeated submit. A POST that succeeds answers with the next
step (htmx, with HX-Push-Url) or a redirect to it (POST/redirect/GET); an invalid one re-renders its
step with status 200 so that htmx swaps it.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.cache import never_cache
from django_htmx.http import push_url, reswap, retarget

from console.roles import EDITOR, requires
from pools import forms, sources, table_settings
from pools.models import DataPool
from pools.services import create_pool

SESSION_KEY = "pool_wizard"
STEPS = ("source", "schema", "auth", "table", "confirm", "name")
DONE = "done"
TITLES = {
    "source": "Select your data source",
    "schema": "Define schema",
    "auth": "Configure authentication",
    "table": "Table settings",
    "confirm": "Confirm table settings",
    "name": "Name your Data Pool",
    DONE: "Your Data Pool is ready",
}
# The progress indicator: the guide's six parts of Step 2 and the wizard steps each one covers.
PROGRESS = (
    ("Source", ("source",)),
    ("Schema", ("schema",)),
    ("Authentication", ("auth",)),
    ("Table settings", ("table", "confirm")),
    ("Name", ("name",)),
    ("HTTP endpoint", (DONE,)),
)
TARGET = "#wizard-step"
# Answers left alone this long are forgotten (the Basic Authentication password among them).
IDLE_SECONDS = 6 * 3600
# The destination settings of Step 3 of the guide, shown on the done page.
FIREHOSE_SETTINGS = (
    ("Retry duration", "7200 seconds"),
    ("Content encoding", "Not enabled"),
    ("Buffer size", "1 MiB"),
)


class Wizard:
    """The wizard's answers, kept in the session as one dict."""

    def __init__(self, request: HttpRequest):
        self.request = request
        self.state: dict = dict(request.session.get(SESSION_KEY) or {})
        if self.state and time.time() - self.state.get("saved_at", 0) > IDLE_SECONDS:
            self.reset()

    def save(self) -> None:
        self.state["saved_at"] = int(time.time())
        self.request.session[SESSION_KEY] = self.state

    def reset(self, **state) -> None:
        self.state = state
        if state:
            self.save()
        else:
            self.request.session.pop(SESSION_KEY, None)

    @property
    def auth(self) -> dict:
        return self.state.get("auth") or {}

    def settings(self) -> table_settings.TableSettings | None:
        answers = self.state.get("table")
        if not answers:
            return None
        try:
            return table_settings.derive(**answers)
        except (TypeError, ValueError):  # answers saved by an older version of the wizard
            return None

    def complete(self, step: str) -> bool:
        if step == "source":
            return self.state.get("source") == "dynamodb"
        if step == "schema":
            return self.state.get("schema") is True
        if step == "auth":
            return bool(self.auth.get("user") and self.auth.get("password"))
        if step == "table":
            return self.settings() is not None
        if step == "confirm":
            return self.state.get("confirmed") is True
        return False  # "name" completes by creating the pool

    def first_incomplete(self, before: str = DONE) -> str | None:
        end = STEPS.index(before) if before in STEPS else len(STEPS)
        return next((s for s in STEPS[:end] if not self.complete(s)), None)

    def token(self) -> str:
        """The final form's token, one per run: a final form left over from another run is refused."""
        if not self.state.get("token"):
            self.state["token"] = secrets.token_urlsafe(16)
            self.save()
        return self.state["token"]


@requires(EDITOR)
@never_cache
def start(request: HttpRequest) -> HttpResponse:
    """GET: resume the wizard where it was left, or start afresh; POST: cancel it."""
    wizard = Wizard(request)
    if request.method == "POST":
        wizard.reset()
        return redirect("pools:list")
    if "created" in wizard.state:
        wizard.reset()
    return _go(request, wizard, wizard.first_incomplete() or "name")


@requires(EDITOR)
@never_cache
def step(request: HttpRequest, step: str) -> HttpResponse:
    if step not in STEPS and step != DONE:
        raise Http404
    wizard = Wizard(request)
    if step == DONE:
        return _done(request, wizard)
    if "created" in wizard.state:
        # This run of the wizard has finished: a repeated final submit lands on its done page.
        return _go(request, wizard, DONE)
    missing = wizard.first_incomplete(before=step)
    if missing:
        return _go(request, wizard, missing)
    if request.method == "POST":
        return POST_HANDLERS[step](request, wizard)
    if step == "name" and request.htmx and request.htmx.trigger_name == "name":
        return _name_message(request, request.GET.get("name", "").strip())
    return _render(request, wizard, step)


# --- POST handlers: validate, remember, move on ------------------------------------------------


def _post_source(request: HttpRequest, wizard: Wizard) -> HttpResponse:
    form = forms.SourceForm(request.POST)
    if not form.is_valid():
        return _render(request, wizard, "source", form=form)
    wizard.state["source"] = form.cleaned_data["source"]
    wizard.save()
    return _go(request, wizard, "schema")


def _post_schema(request: HttpRequest, wizard: Wizard) -> HttpResponse:
    wizard.state["schema"] = True  # the defaults: the change events as they are
    wizard.save()
    return _go(request, wizard, "auth")


def _post_auth(request: HttpRequest, wizard: Wizard) -> HttpResponse:
    form = forms.AuthForm(request.POST, has_password=bool(wizard.auth.get("password")))
    if not form.is_valid():
        return _render(request, wizard, "auth", form=form)
    password = form.cleaned_data["password"] or wizard.auth["password"]
    # The password waits here, in clear, until the pool is created (it is hashed there).
    wizard.state["auth"] = {"user": form.cleaned_data["user"], "password": password}
    wizard.save()
    return _go(request, wizard, "table")


def _post_table(request: HttpRequest, wizard: Wizard) -> HttpResponse:
    form = forms.TableForm(request.POST)
    if not form.is_valid():
        return _render(request, wizard, "table", form=form)
    wizard.state["table"] = form.answers()
    wizard.state["confirmed"] = False  # changed settings are confirmed again
    wizard.save()
    return _go(request, wizard, "confirm")


def _post_confirm(request: HttpRequest, wizard: Wizard) -> HttpResponse:
    wizard.state["confirmed"] = True
    wizard.save()
    return _go(request, wizard, "name")


def _post_name(request: HttpRequest, wizard: Wizard) -> HttpResponse:
    """Create the pool: the only step that writes anything but the session."""
    form = forms.NameForm(request.POST)
    name = request.POST.get("name", "").strip()
    if not form.is_valid():
        # A second submit that raced the first finds the name taken by the pool the first made.
        pool = _created_by_this_run(wizard, name)
        if pool:
            return _finish(request, wizard, pool)
        return _render(request, wizard, "name", form=form)
    if request.POST.get("token") != wizard.token():
        form.add_error(None, "This form was out of date; check the values and create the Data Pool again.")
        return _render(request, wizard, "name", form=form)
    settings = wizard.settings()
    try:
        pool = create_pool(
            form.cleaned_data["name"],
            description=form.cleaned_data["description"],
            basic_auth_user=wizard.auth["user"],
            basic_auth_password=wizard.auth["password"],
            **settings.pool_fields(),
        )
    except (ValidationError, IntegrityError) as exc:
        pool = _created_by_this_run(wizard, form.cleaned_data["name"])
        if pool:
            return _finish(request, wizard, pool)
        if isinstance(exc, IntegrityError):
            exc = ValidationError(f"A Data Pool named {form.cleaned_data['name']!r} already exists.")
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"name": exc.messages}
        for field, messages in errors.items():
            form.add_error(field if field in form.fields else None, messages)
        return _render(request, wizard, "name", form=form)
    return _finish(request, wizard, pool)


POST_HANDLERS = {
    "source": _post_source,
    "schema": _post_schema,
    "auth": _post_auth,
    "table": _post_table,
    "confirm": _post_confirm,
    "name": _post_name,
}


def _created_by_this_run(wizard: Wizard, name: str) -> DataPool | None:
    """The pool named `name` if this run of the wizard made it (same, fresh Basic credentials)."""
    auth = wizard.auth
    if not name or not auth.get("password"):
        return None
    recent = timezone.now() - timedelta(hours=1)
    pool = DataPool.objects.filter(name=name, created_at__gte=recent).first()
    if pool and pool.check_basic_auth(auth["user"], auth["password"]):
        return pool
    return None


def _finish(request: HttpRequest, wizard: Wizard, pool: DataPool) -> HttpResponse:
    # Forget the answers (the password above all); keep what the done page and a repeat need.
    wizard.reset(created=pool.pk, token=wizard.state.get("token"))
    return _go(request, wizard, DONE)


def _done(request: HttpRequest, wizard: Wizard) -> HttpResponse:
    pool = DataPool.objects.filter(pk=wizard.state.get("created")).first()
    if pool is None:
        if "created" in wizard.state:  # deleted since
            wizard.reset()
        return _go(request, wizard, wizard.first_incomplete() or "name")
    return _render(request, wizard, DONE, pool=pool)


# --- Rendering --------------------------------------------------------------------------------


def _partial(request: HttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


def _url(step: str) -> str:
    return reverse("pools:create_step", args=[step])


def _go(request: HttpRequest, wizard: Wizard, step: str) -> HttpResponse:
    """Move to a step: render it for htmx (pushing its URL), redirect otherwise."""
    if _partial(request):
        return push_url(_render(request, wizard, step, as_get=True), _url(step))
    return redirect(_url(step))


def _render(
    request: HttpRequest,
    wizard: Wizard,
    step: str,
    *,
    form=None,
    pool: DataPool | None = None,
    as_get: bool = False,
) -> HttpResponse:
    context = {
        "step": step,
        "title": TITLES[step],
        "step_url": _url(step),
        "back_url": _back_url(step),
        "progress": _progress(wizard, step),
        "step_template": f"pools/wizard/{step}.html",
        "partial": _partial(request),
        # Pages with secrets stay out of htmx's history cache (localStorage).
        "sensitive": step in ("auth", DONE),
    }
    context.update(STEP_CONTEXT[step](wizard, form, pool))
    template = "pools/wizard/_step.html" if _partial(request) else "pools/wizard/page.html"
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    if _partial(request) and as_get:
        # The step replaces the wizard region whatever element asked for it.
        response = reswap(retarget(response, TARGET), "innerHTML")
    return response


def _back_url(step: str) -> str | None:
    if step == "source":
        return reverse("pools:list")
    if step == DONE:
        return None
    return _url(STEPS[STEPS.index(step) - 1])


@dataclass
class ProgressItem:
    number: int
    label: str
    state: str  # done, current or todo
    url: str | None


def _progress(wizard: Wizard, current: str) -> list[ProgressItem]:
    finished = current == DONE
    position = len(STEPS) if finished else STEPS.index(current)
    items = []
    for number, (label, steps) in enumerate(PROGRESS, start=1):
        first = steps[0]
        if current in steps:
            state, url = "current", None
        elif first == DONE or STEPS.index(first) > position:
            state, url = "todo", None
        else:
            # Finished steps can be revisited until the pool exists.
            state, url = "done", None if finished else _url(first)
        items.append(ProgressItem(number, label, state, url))
    return items


# --- Per-step context ---------------------------------------------------------------------------


def _source_context(wizard: Wizard, form, pool) -> dict:
    return {
        "form": form or forms.SourceForm(initial={"source": wizard.state.get("source", "dynamodb")}),
        "sources": forms.SOURCES,
        "sources_soon": forms.SOURCES_SOON,
        "selected": (form.data.get("source") if form else None) or wizard.state.get("source", "dynamodb"),
    }


def _schema_context(wizard: Wizard, form, pool) -> dict:
    return {"columns": sources.get(wizard.state.get("source", sources.DEFAULT)).columns}


def _auth_context(wizard: Wizard, form, pool) -> dict:
    has_password = bool(wizard.auth.get("password"))
    form = form or forms.AuthForm(initial={"user": wizard.auth.get("user", "")}, has_password=has_password)
    return {"form": form, "has_password": has_password}


def _table_context(wizard: Wizard, form, pool) -> dict:
    if form is None:
        answers = wizard.state.get("table")
        initial = None
        if answers:
            initial = {
                "mode": answers["mode"],
                "unique": answers["unique"] or ["event_id"],
                "time_column": answers["time_column"] or "",
                "filters": answers["filters"],
                "version": answers["version"] or "",
            }
        form = forms.TableForm(initial=initial)
    return {
        "form": form,
        "modes": [
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
        ],
        "mode": form["mode"].value() or table_settings.APPEND_ONLY,
    }


def _confirm_context(wizard: Wizard, form, pool) -> dict:
    settings = wizard.settings()
    return {
        "settings": settings,
        "mutable": wizard.state["table"]["mode"] == table_settings.MUTABLE,
        "mode_label": table_settings.MODES[wizard.state["table"]["mode"]],
    }


def _name_context(wizard: Wizard, form, pool) -> dict:
    return {
        "form": form or forms.NameForm(),
        "token": wizard.token(),
        "settings": wizard.settings(),
        "auth_user": wizard.auth.get("user"),
    }


def _done_context(wizard: Wizard, form, pool) -> dict:
    pool = pool or DataPool.objects.get(pk=wizard.state["created"])
    return {"pool": pool, "firehose": FIREHOSE_SETTINGS}


STEP_CONTEXT = {
    "source": _source_context,
    "schema": _schema_context,
    "auth": _auth_context,
    "table": _table_context,
    "confirm": _confirm_context,
    "name": _name_context,
    DONE: _done_context,
}


def _name_message(request: HttpRequest, name: str) -> HttpResponse:
    """Live validation of the name field: just its message."""
    context = {"name": name, "errors": forms.check_name(name), "checked": True}
    response = render(request, "pools/wizard/_name_message.html", context)
    patch_vary_headers(response, ("HX-Request",))
    return response
