from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from views_mv import services, tasks
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


class NarrowedFilter(admin.SimpleListFilter):
    title = "column types"
    parameter_name = "narrowed"

    def lookups(self, request, model_admin):
        return [("yes", "Narrower than the query"), ("no", "As the query declares")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(narrowed_types=[])
        if self.value() == "no":
            return queryset.filter(narrowed_types=[])
        return queryset


@admin.register(MaterializedView)
class MaterializedViewAdmin(admin.ModelAdmin):
    list_display = ("name", "source_pool", "target_pool", "status", "narrowed", "created_at")
    list_filter = ("status", NarrowedFilter)
    search_fields = ("name", "description", "user_sql", "sql")
    readonly_fields = (
        "source_pool",
        "target_pool",
        "user_sql",
        "sql",
        "status",
        "status_detail",
        "narrowed_types",
        "types_checked_at",
        "created_at",
    )
    inlines = [BackfillInline]
    actions = ["rebuild"]

    @admin.display(description="Columns narrower than the query")
    def narrowed(self, mv):
        return (
            ", ".join(f"{c['column']} {c['stored']} (query: {c['declared']})" for c in mv.narrowed_types)
            or "—"
        )

    @admin.action(description="Rebuild the pool with the query's types (and copy the source again)")
    def rebuild(self, request, queryset):
        for mv in queryset.select_related("target_pool"):
            try:
                services.rebuild_mv(mv)
            except ValidationError as exc:
                self.message_user(request, f"{mv.name}: {' '.join(exc.messages)}", messages.ERROR)
            else:
                self.message_user(request, f"Rebuilding {mv.target_pool.name}.", messages.SUCCESS)


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
