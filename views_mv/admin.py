from django.contrib import admin

from views_mv.models import Backfill, MaterializedView


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
