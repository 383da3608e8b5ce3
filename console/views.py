from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.password_validation import validate_password
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from console import roles, setup_token


class FirstAdminForm(forms.Form):
    username = forms.CharField(max_length=150, initial="admin")
    email = forms.EmailField(required=False)
    password = forms.CharField(widget=forms.PasswordInput)
    password2 = forms.CharField(widget=forms.PasswordInput, label="Password (again)")

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("password") != data.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        elif data.get("password"):
            try:
                validate_password(data["password"], get_user_model()(username=data.get("username", "")))
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return data


@login_not_required
def first_admin(request: HttpRequest, token: str) -> HttpResponse:
    # Without a valid token, or once any user exists, the page does not exist.
    if not setup_token.check_token(token) or not setup_token.needs_setup():
        raise Http404
    form = FirstAdminForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = get_user_model().objects.create_superuser(
            form.cleaned_data["username"], form.cleaned_data["email"], form.cleaned_data["password"]
        )
        roles.set_role(user, roles.ADMIN)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("pools:list")
    return render(request, "console/first_admin.html", {"form": form})


@login_not_required
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True})
