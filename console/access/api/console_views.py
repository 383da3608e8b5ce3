"""The console's API keys page (admins): list, create (the key is shown once), revoke."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from console import encryption
from console.access.api import keys
from console.access.api.models import ApiKey
from console.roles import ADMIN, requires
from pools.models import DataPool


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=64, help_text="Also the user name for ClickHouse clients.")
    scope = forms.ChoiceField(choices=ApiKey.Scope.choices, initial=ApiKey.Scope.QUERY)
    role = forms.ChoiceField(
        choices=[("editor", "Editor"), ("admin", "Admin")],
        initial="editor",
        required=False,
        help_text="Manage keys: whose rights the key has (admins also rotate and see pools' access keys).",
    )
    pools = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Query keys: the pools it may read (none ticked: all of them).",
    )
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires",
        help_text="Optional, UTC: YYYY-MM-DD HH:MM.",
        widget=forms.DateTimeInput(attrs={"placeholder": "2027-01-31 00:00"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        names = DataPool.objects.exclude(status=DataPool.Status.DELETING).values_list("name", flat=True)
        self.fields["pools"].choices = [(n, n) for n in names]

    def clean(self):
        """A field shown for one scope only is left out for the other: pools ticked before the
        user switched to a manage key are hidden, not part of what they asked for."""
        data = super().clean()
        if data.get("scope") == ApiKey.Scope.MANAGE:
            data["pools"] = []
        else:
            data["role"] = ""
        return data


# The key just made, shown once on the page the POST redirects to (post/redirect/get: a reload or
# Back then neither creates a second key nor meets a 405). It waits in the session encrypted, as
# every secret Shoal keeps (console/encryption.py), and is gone once shown.
_SHOWN_ONCE = "api_keys:new"
_PURPOSE = b"shoal-api-key-shown-once"


def _keep_for_one_showing(request: HttpRequest, name: str, key: str) -> None:
    request.session[_SHOWN_ONCE] = {"name": name, "key": encryption.encrypt(key, _PURPOSE)}


def _take_shown_once(request: HttpRequest) -> dict | None:
    kept = request.session.pop(_SHOWN_ONCE, None)
    if not kept:
        return None
    try:
        return {"name": kept["name"], "key": encryption.decrypt(kept["key"], _PURPOSE)}
    except Exception:  # a key rotated meanwhile: nothing to show
        return None


@requires(ADMIN)
def key_list(request: HttpRequest) -> HttpResponse:
    return _page(request, ApiKeyForm(), new=_take_shown_once(request))


@requires(ADMIN)
@require_POST
def key_create(request: HttpRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            new = keys.create_key(
                data["name"],
                data["scope"],
                pools=data["pools"],
                expires_at=data["expires_at"],
                created_by=request.user,
                role=(data["role"] or "editor") if data["scope"] == ApiKey.Scope.MANAGE else "editor",
            )
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, messages)
        else:
            _keep_for_one_showing(request, new.api_key.name, new.key)
            return redirect("api_keys:list")
    return _page(request, form, status=400)


@requires(ADMIN)
@require_POST
def key_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    keys.revoke(get_object_or_404(ApiKey, pk=pk))
    return redirect("api_keys:list")


def _page(request: HttpRequest, form: ApiKeyForm, *, new=None, status: int = 200) -> HttpResponse:
    context = {"form": form, "api_keys": ApiKey.objects.all(), "new": new}
    return render(request, "console/api_keys.html", context, status=status)
