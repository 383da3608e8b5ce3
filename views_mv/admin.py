from django.contrib import admin, messages

from views_mv import tasks
from views_mv.models import Backfill, MaterializedView, ViewFailure


class BackfillInline(admin.StackedInline):
    model = Backfill
    can_delete = False
    readonly_fields = [
        "status",
        "chunks_done",
        "rows_total",
        "rows_done",
        "started_at",
        "finished_at",
        "heartbeat_at",
        "error",
    ]
    exclude = ["chunks", "chunk_rows"]


@admin.register(MaterializedView)
class MaterializedViewAdmin(admin.ModelAdmin):
    list_display = ("name", "source_pool", "target_pool", "status", "created_at")
    list_filter = ("status",)
    search_fields = ("name", "description", "user_sql", "sql")
    readonly_fields = (
        "source_pool",
        "target_pool",
        "user_sql",
        "sql",
        "status",
        "status_detail",
        "created_at",
    )
    inlines = [BackfillInline]


@admin.register(ViewFailure)
class ViewFailureAdmin(admin.ModelAdmin):
    list_display = ("id", "mv", "delivery", "event_id", "attempts", "created_at", "resolved_at")
    list_filter = ("mv", ("resolved_at", admin.EmptyFieldListFilter))
    search_fields = ("event_id", "error")
    readonly_fields = [f.name for f in ViewFailure._meta.fields]
    actions = ["retry"]

    @admin.action(description="Run the view again over these rows")
    def retry(self, request, queryset):
        for mv_id in set(queryset.values_list("mv_id", flat=True)):
            tasks.warehouse_retry_view_failures.enqueue(mv_id)
        self.message_user(
            request, "Retrying; rows the view still cannot transform stay listed.", messages.SUCCESS
        )

    def has_add_permission(self, request):
        return False
