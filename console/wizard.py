"""One mechanism for Shoal's wizards: an ordered registry of steps, their answers in the session,
one page and one stepper for all of them.

A wizard is a `Wizard` subclass that lists its `Step`s; adding a step is one more entry there plus
its form and template. Every step has its own URL. The first load of a step is a whole page
(templates/_wizard.html); htmx then swaps only the step region (`#wizard-step`, rendered from
templates/_wizard_step.html) and pushes the step's URL. Every htmx link and form is also a real
link or form, so the wizard works without JavaScript (POST, then a redirect to the next step).

A POST is answered so:
- the step's form is invalid (or its `save` added errors): the step again, status 200, with the
  errors next to the fields (htmx swaps it in place);
- `save` returns a dict: the step again with that added to its context (a preview, say);
- `save` returns a response: that response (leaving the wizard, see `Wizard.leave`);
- otherwise the wizard moves on, to the step `save` names or else the step's `next`: a redirect,
  or for htmx the next step rendered as if it had been asked for with a GET ("view restart"),
  retargeted to the step region, with HX-Push-Url.

A step whose earlier steps are not `done` is not shown: the wizard goes to the first of those.
A wizard whose path depends on an answer (the Create Data Pool wizard follows the chosen source
type's steps) says which of its steps a run goes through with `steps_for`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django_htmx.http import HttpResponseClientRedirect, push_url, reswap, retarget

from console.htmx import HtmxHttpRequest, is_partial

REGION = "#wizard-step"
CANCEL = "cancel"  # POST <wizard>/cancel/ forgets the answers and leaves

Outcome = str | HttpResponse | dict | None


def _never(run: Run) -> bool:
    return False


def _nothing(run: Run, form: forms.Form | None) -> dict:
    return {}


@dataclass(frozen=True)
class Step:
    """One step: what it shows, what it asks, where it goes."""

    name: str  # in its URL
    title: str  # its heading and page title
    template: str  # the step's content, inside the wizard's card
    label: str = ""  # its item in the stepper; neighbouring steps with one label share an item
    # The step's form, bound to the POST data when there is some (None: a step without fields).
    form: Callable[[Run, Any], forms.Form] | None = None
    # What a valid POST does: remember the answers, then go on (see the module's docstring).
    save: Callable[[Run, forms.Form | None], Outcome] | None = None
    # What an invalid POST does before its errors are shown (None: just show them).
    invalid: Callable[[Run, forms.Form], Outcome] | None = None
    context: Callable[[Run, forms.Form | None], dict] = _nothing
    # Has it been answered? A later step is shown only when every earlier one is done.
    done: Callable[[Run], bool] = _never
    next: str | None = None  # where a valid POST goes unless `save` says; the following step
    # An htmx GET that asks for a piece of the step rather than the step (a field's live check).
    fragment: Callable[[Run], HttpResponse | None] | None = None
    final: bool = False  # the end: no way back, the stepper's items are no longer links
    sensitive: bool = False  # shows a secret: kept out of htmx's history cache (localStorage)


@dataclass
class StepperItem:
    number: int
    label: str
    state: str  # done, current or todo
    url: str | None


@dataclass
class Run:
    """One request to a wizard: its answers so far, and what the URL named (a pool, say)."""

    wizard: Wizard
    request: HtmxHttpRequest
    kwargs: dict
    state: dict = field(default_factory=dict)
    cache: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state = dict(self.request.session.get(self.wizard.session_key(self)) or {})
        if self.state and time.time() - self.state.get("saved_at", 0) > self.wizard.idle_seconds:
            self.reset()

    def save(self) -> None:
        self.state["saved_at"] = int(time.time())
        self.request.session[self.wizard.session_key(self)] = self.state

    def reset(self, **state) -> None:
        self.state = state
        if state:
            self.save()
        else:
            self.request.session.pop(self.wizard.session_key(self), None)

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """What `compute` returns, computed once per request (a look-up both form and page need)."""
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    def url(self, step: str) -> str:
        return self.wizard.url(self, step)


class Wizard:
    """The steps of one wizard and how it is reached; subclasses set the attributes and `url`."""

    name = ""  # the page's wrapper is `<name>-wizard`
    heading = ""  # the page's h1
    nav = ""  # the sidebar entry it belongs to: "pools" or "mv"
    steps: tuple[Step, ...] = ()
    idle_seconds = 6 * 3600  # answers left alone this long are forgotten
    notice_template = ""  # shown above every step's card (a warning about the setup)

    def __init__(self) -> None:
        self.by_name = {step.name: step for step in self.steps}

    # --- what subclasses say --------------------------------------------------------------------

    def session_key(self, run: Run) -> str:
        return f"{self.name}_wizard"

    def url(self, run: Run, step: str) -> str:
        raise NotImplementedError

    def exit(self, run: Run) -> tuple[str, str]:
        """Where the wizard is left for, before it starts or on cancel: (label, URL)."""
        raise NotImplementedError

    def page_context(self, run: Run) -> dict:
        """What the page around the steps shows (an intro, the notice's values)."""
        return {}

    def steps_for(self, run: Run) -> tuple[Step, ...]:
        """The steps this run goes through, in order (a subset of `steps`, chosen by an answer)."""
        return self.steps

    def redirect_for(self, run: Run, step: str) -> str | None:
        """The step to show instead of `step`, if any: the first earlier one not done."""
        if step not in self.order(run):
            return self.first_incomplete(run) or self.order(run)[-1]
        return self.first_incomplete(run, before=step)

    # --- views ------------------------------------------------------------------------------------

    def start(self, request: HtmxHttpRequest, **kwargs) -> HttpResponse:
        """GET: resume where the wizard was left (from the start with ?restart); POST: cancel."""
        run = Run(self, request, kwargs)
        if request.method == "POST":
            return self.cancel(run)
        if "restart" in request.GET:
            run.reset()
        return self.go(run, self.first_incomplete(run) or self.order(run)[-1])

    def dispatch(self, request: HtmxHttpRequest, step: str, **kwargs) -> HttpResponse:
        run = Run(self, request, kwargs)
        if step == CANCEL:
            return self.cancel(run) if request.method == "POST" else HttpResponseNotAllowed(["POST"])
        if step not in self.by_name:
            raise Http404
        instead = self.redirect_for(run, step)
        if instead and instead != step:
            return self.go(run, instead)
        current = self.by_name[step]
        if request.method == "POST" and current.save is not None:
            return self.post(run, current)
        if current.fragment is not None and request.htmx:
            piece = current.fragment(run)
            if piece is not None:
                return piece
        return self.render(run, current)

    def cancel(self, run: Run) -> HttpResponse:
        run.reset()
        return redirect(self.exit(run)[1])

    # --- the mechanism ----------------------------------------------------------------------------

    def order(self, run: Run) -> list[str]:
        return [step.name for step in self.steps_for(run)]

    def first_incomplete(self, run: Run, before: str | None = None) -> str | None:
        steps = self.steps_for(run)
        end = self.order(run).index(before) if before in self.order(run) else len(steps)
        return next((s.name for s in steps[:end] if not s.done(run)), None)

    def following(self, run: Run, step: Step) -> str:
        order = self.order(run)
        return step.next or order[order.index(step.name) + 1]

    def post(self, run: Run, step: Step) -> HttpResponse:
        form = step.form(run, run.request.POST) if step.form else None
        if form is None or form.is_valid():
            outcome = step.save(run, form)
        else:
            outcome = step.invalid(run, form) if step.invalid else None
        if isinstance(outcome, HttpResponse):
            return outcome
        if isinstance(outcome, str):
            return self.go(run, outcome)
        if isinstance(outcome, dict) or (form is not None and form.errors):
            return self.render(run, step, form, outcome or {})
        return self.go(run, self.following(run, step))

    def go(self, run: Run, step: str) -> HttpResponse:
        """Move to a step: render it for htmx (pushing its URL), redirect otherwise."""
        if is_partial(run.request):
            response = self.render(run, self.by_name[step], moved=True)
            return push_url(response, run.url(step))
        return redirect(run.url(step))

    def leave(self, run: Run, url: str) -> HttpResponse:
        """Leave the wizard for another page: a whole-page navigation, with htmx too."""
        if run.request.htmx:
            return HttpResponseClientRedirect(url)
        return redirect(url)

    def render(
        self, run: Run, step: Step, form: forms.Form | None = None, extra: dict | None = None, *, moved=False
    ) -> HttpResponse:
        partial = is_partial(run.request)
        template = "_wizard_step.html" if partial else "_wizard.html"
        response = render(run.request, template, self.context(run, step, form, extra))
        patch_vary_headers(response, ("HX-Request",))
        if partial and moved:
            # The step replaces the step region whatever element asked for it, seen from its top.
            response = reswap(retarget(response, REGION), "innerHTML show:window:top")
        return response

    def context(
        self, run: Run, step: Step, form: forms.Form | None = None, extra: dict | None = None
    ) -> dict:
        """What the page, the step region and the step's template see."""
        if form is None and step.form is not None:
            form = step.form(run, None)
        exit_label, exit_url = self.exit(run)
        return {
            "wizard": self,
            "step": step,
            "form": form,
            "step_url": run.url(step.name),
            "back_url": self.back_url(run, step),
            "cancel_url": None if step.final else run.url(CANCEL),
            "exit_label": exit_label,
            "exit_url": exit_url,
            "stepper": self.stepper(run, step),
            "partial": is_partial(run.request),
            **self.page_context(run),
            **step.context(run, form),
            **(extra or {}),
        }

    def back_url(self, run: Run, step: Step) -> str | None:
        order = self.order(run)
        position = order.index(step.name)
        if step.final or position == 0:
            return None
        return run.url(order[position - 1])

    def stepper(self, run: Run, current: Step) -> list[StepperItem]:
        order = self.order(run)
        position = order.index(current.name)
        groups: list[list[Step]] = []
        for step in self.steps_for(run):
            if groups and groups[-1][0].label == step.label:
                groups[-1].append(step)
            else:
                groups.append([step])
        items = []
        for number, group in enumerate(groups, start=1):
            first = order.index(group[0].name)
            if current in group:
                state, url = "current", None
            elif first > position:
                state, url = "todo", None
            else:
                # Finished steps can be revisited until the wizard's work is done.
                state, url = "done", None if current.final else run.url(group[0].name)
            items.append(StepperItem(number, group[0].label or group[0].title, state, url))
        return items
