from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User

from console import roles
from console.models import QueryRun


@admin.register(QueryRun)
class QueryRunAdmin(admin.ModelAdmin):
    list_display = ("title", "user", "created_at", "elapsed_ms", "row_count", "truncated", "ok")
    list_filter = ("failed", "truncated", "created_at", "user")
    search_fields = ("sql", "error", "user__username")
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    readonly_fields = (
        "user",
        "sql",
        "task_id",
        "created_at",
        "finished_at",
        "elapsed_ms",
        "row_count",
        "truncated",
        "failed",
        "error",
    )

    @admin.display(boolean=True, description="OK", ordering="failed")
    def ok(self, run: QueryRun) -> bool | None:
        return None if run.pending else not run.failed

    @admin.display(description="SQL", ordering="sql")
    def title(self, run: QueryRun) -> str:
        return run.title

    def has_add_permission(self, request) -> bool:
        return False  # runs are recorded by the SQL Console


class UserCreationWithRoleForm(UserCreationForm):
    """Admin → Add user asks for the role too: a user without one can open nothing."""

    role = forms.ChoiceField(
        choices=[(r, f"{r}: {roles.DESCRIPTIONS[r]}") for r in roles.ROLES],
        initial=roles.VIEWER,
        help_text="What the user may do in the console; change it later under Groups.",
    )

    def save(self, commit: bool = True):
        user = super().save(commit=commit)
        if commit:  # the admin saves with commit=False, then save_model below
            roles.set_role(user, self.cleaned_data["role"])
        return user


class ShoalUserAdmin(UserAdmin):
    add_form = UserCreationWithRoleForm
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "password1", "password2", "role")}),
    )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change and "role" in getattr(form, "cleaned_data", {}):
            roles.set_role(obj, form.cleaned_data["role"])


admin.site.unregister(User)
admin.site.register(User, ShoalUserAdmin)
