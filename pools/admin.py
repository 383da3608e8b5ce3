from django.contrib import admin, messages

from pools import loader, quarantine
from pools.models import DataPool, Delivery, QuarantinedRecord
from pools.tasks import warehouse_load_pool


@admin.register(DataPool)
class DataPoolAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "record_count", "quarantined_count", "last_delivery_at", "created_at")
    list_filter = ("status", "kind")
    search_fields = ("name", "description")
    readonly_fields = (
        "public_id",
        "access_key_hint",
        "access_key_rotated_at",
        "basic_auth_password",
        "record_count",
        "quarantined_count",
        "last_delivery_at",
        "created_at",
        "updated_at",
        # The table's layout is made from validated column names by the wizards and create_mv, and
        # checked again before any CREATE TABLE (pools/table_layout.py): never typed in here.
        "kind",
        "columns",
        "engine",
        "sorting_key",
        "partition_key",
        "timestamp_column",
        "version_column",
        "deleted_column",
    )
    actions = ["rotate_access_keys"]

    @admin.action(description="Rotate the access key")
    def rotate_access_keys(self, request, queryset):
        for pool in queryset:
            pool.rotate_access_key()
        self.message_user(request, f"Rotated {queryset.count()} access keys.", messages.SUCCESS)


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "request_id",
        "pool",
        "status",
        "record_count",
        "loaded_count",
        "quarantined_count",
        "body_bytes",
        "received_at",
        "loaded_at",
        "attempts",
    )
    list_filter = ("status", "pool")
    search_fields = ("request_id", "source_arn")
    exclude = ("body",)
    readonly_fields = [f.name for f in Delivery._meta.fields if f.name != "body"]
    actions = ["requeue"]

    @admin.action(description="Re-queue for loading")
    def requeue(self, request, queryset):
        count = loader.requeue(list(queryset.values_list("id", flat=True)))
        for pool_id in set(queryset.values_list("pool_id", flat=True)):
            warehouse_load_pool.enqueue(pool_id)
        self.message_user(request, f"Re-queued {count} deliveries.", messages.SUCCESS)

    def has_add_permission(self, request):
        return False


@admin.register(QuarantinedRecord)
class QuarantinedRecordAdmin(admin.ModelAdmin):
    list_display = ("id", "pool", "delivery", "position", "reason", "created_at", "replayed_at")
    list_filter = ("pool", "reason", ("replayed_at", admin.EmptyFieldListFilter))
    search_fields = ("reason", "data")
    readonly_fields = [f.name for f in QuarantinedRecord._meta.fields]
    actions = ["replay"]

    @admin.action(description="Replay through the ingest path")
    def replay(self, request, queryset):
        deliveries = quarantine.replay(list(queryset.values_list("id", flat=True)))
        self.message_user(
            request,
            f"Replayed as {len(deliveries)} new deliveries; still-invalid records return here.",
            messages.SUCCESS,
        )

    def has_add_permission(self, request):
        return False
