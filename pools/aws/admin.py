"""Admin pages of AWS connections and pipelines."""

from __future__ import annotations

from django.contrib import admin

from pools.aws.models import AwsConnection, Pipeline, PipelineStep, SandboxRelay


@admin.register(AwsConnection)
class AwsConnectionAdmin(admin.ModelAdmin):
    list_display = ("name", "region", "auth_method", "endpoint_url", "account_id", "tested_at")
    search_fields = ("name", "access_key_id", "role_arn")
    # The secret is never shown, not even encrypted; set it on the console's connection page.
    exclude = ("secret_access_key_encrypted",)
    readonly_fields = ("account_id", "caller_arn", "tested_at", "test_error", "created_at", "updated_at")


class SandboxRelayInline(admin.StackedInline):
    model = SandboxRelay
    extra = 0
    can_delete = False
    fields = ("emulated", "checkpoint")
    readonly_fields = fields


class PipelineStepInline(admin.TabularInline):
    model = PipelineStep
    extra = 0
    can_delete = False
    fields = ("phase", "position", "key", "state", "attempts", "detail", "error", "started_at", "finished_at")
    readonly_fields = fields


@admin.register(Pipeline)
class PipelineAdmin(admin.ModelAdmin):
    list_display = (
        "pool",
        "table_name",
        "stream_name",
        "firehose_name",
        "connection",
        "status",
        "created_at",
    )
    list_filter = ("status",)
    search_fields = ("pool__name", "table_name", "stream_name", "firehose_name", "bucket_name")
    inlines = [PipelineStepInline, SandboxRelayInline]
    readonly_fields = (
        "uid",
        "stream_arn",
        "stream_created",
        "bucket_created",
        "role_arn",
        "role_created",
        "firehose_arn",
        "firehose_created",
        "log_group",
        "log_group_created",
        "destination_created",
        "destination_enabled_at",
        "resource_status",
        "checked_at",
        "last_replay",
    )
