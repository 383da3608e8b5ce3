from __future__ import annotations

from django.contrib import admin, messages

from console.access.api import keys
from console.access.api.models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are created in the console or with `create_api_key` (the key is shown once there);
    here they are listed and revoked."""

    list_display = ("name", "scope", "pools", "prefix", "created_at", "expires_at", "last_used_at", "state")
    list_filter = ("scope", "revoked_at")
    search_fields = ("name",)
    readonly_fields = (
        "name",
        "scope",
        "pools",
        "prefix",
        "created_by",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    exclude = ("key_hash", "limited", "limited_pools")
    actions = ["revoke"]

    @admin.display(description="pools")
    def pools(self, api_key: ApiKey) -> str:
        readable = api_key.readable_pools()
        return "all" if readable is None else ", ".join(readable) or "none (deleted)"

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset):
        for api_key in queryset:
            keys.revoke(api_key)
        messages.success(request, f"Revoked {queryset.count()} key(s).")
