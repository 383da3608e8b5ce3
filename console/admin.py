from __future__ import annotations

from django.contrib import admin

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
