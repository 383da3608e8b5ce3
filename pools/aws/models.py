"""AWS connections and the pipelines Shoal provisions with them (DynamoDB → Kinesis → Firehose → pool).

The tables keep the names they had when these models belonged to the `pools` app (db_table), so
that moving them into the `aws` app moved no data.

A Pipeline records every resource it uses by name and ARN, and whether Shoal created it or the user
chose an existing one: teardown removes only the former. Its steps (PipelineStep) keep the state of
each provisioning or teardown step, with AWS's error text when one failed.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse

from pools.aws import secrets

__all__ = ["AwsConnection", "Pipeline", "PipelineStep", "SandboxRelay", "Snapshot"]

region_validator = RegexValidator(
    r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d{1,2}$", "An AWS region code, such as us-east-1 or eu-west-1."
)
# DynamoDB streams changes with this timestamp precision (ApproximateCreationDateTimePrecision).
# MICROSECOND: a faithful replica orders an item's changes by this time (see
# views_mv/versioning.py), and two changes of one item within a millisecond happen; the loader keeps
# the value as sent with its precision, and the version normalises both. Always passed explicitly,
# since the API's default when the parameter is omitted is unconfirmed.
STREAMING_PRECISION = "MICROSECOND"


def new_uid() -> str:
    return uuid.uuid4().hex


class AwsConnection(models.Model):
    class Auth(models.TextChoices):
        DEFAULT_CHAIN = "default", "Default credential chain"
        ACCESS_KEY = "access_key", "Access key pair"
        ASSUME_ROLE = "assume_role", "Assume a role"

    name = models.CharField(max_length=100, unique=True)
    region = models.CharField(max_length=32, default="us-east-1", validators=[region_validator])
    auth_method = models.CharField(max_length=20, choices=Auth.choices, default=Auth.DEFAULT_CHAIN)
    access_key_id = models.CharField(max_length=128, blank=True)
    # Fernet token (pools/aws/secrets.py), never the secret itself.
    secret_access_key_encrypted = models.TextField(blank=True)
    role_arn = models.CharField(max_length=2048, blank=True)
    external_id = models.CharField(max_length=1224, blank=True)
    endpoint_url = models.CharField(
        max_length=500,
        blank=True,
        help_text="Only for a local AWS emulator such as moto, e.g. http://127.0.0.1:5055.",
    )
    # The outcome of the last "Test connection".
    account_id = models.CharField(max_length=12, blank=True)
    caller_arn = models.CharField(max_length=2048, blank=True)
    tested_at = models.DateTimeField(null=True, blank=True)
    test_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "pools_awsconnection"
        ordering = ["name"]
        verbose_name = "AWS connection"

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("aws:connection", args=[self.pk])

    @property
    def is_emulator(self) -> bool:
        """Points at a local emulator (sandbox): some AWS calls are missing there."""
        return bool(self.endpoint_url)

    @property
    def secret_access_key(self) -> str:
        return secrets.decrypt(self.secret_access_key_encrypted)

    def set_secret_access_key(self, value: str) -> None:
        self.secret_access_key_encrypted = secrets.encrypt(value)

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_access_key_encrypted)


class PipelineQuerySet(models.QuerySet):
    def current(self) -> Pipeline | None:
        """The pipeline of a pool that has not been torn down (`pool.aws_pipelines.current`)."""
        return self.exclude(status=Pipeline.Status.REMOVED).order_by("-id").first()

    def delivery_url_problem(self) -> str:
        """Why Firehose cannot deliver to PUBLIC_BASE_URL, or "".

        For templates: `pool.aws_pipelines.delivery_url_problem`."""
        return delivery_url_problem(settings.PUBLIC_BASE_URL)


def delivery_url_problem(url: str) -> str:
    """Firehose delivers only to https:// URLs on port 443."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        return f"PUBLIC_BASE_URL is {url}: Firehose delivers only to https:// URLs on port 443."
    try:
        port = parts.port
    except ValueError:
        return f"PUBLIC_BASE_URL is {url}: its port is not a number."
    if port not in (None, 443):
        return f"PUBLIC_BASE_URL is {url}: Firehose delivers only to port 443, not {port}."
    return ""


class Pipeline(models.Model):
    """DynamoDB table → (Kinesis data stream → Firehose stream → this Data Pool's endpoint), or
    read by Shoal itself from the table's Kinesis data stream or DynamoDB stream (pools/pull/)."""

    class Mode(models.TextChoices):
        FIREHOSE = "firehose", "Firehose push"
        KINESIS = "kinesis_pull", "Kinesis pull"
        STREAMS = "streams_pull", "DynamoDB Streams pull"

    class Start(models.TextChoices):
        OLDEST = "oldest", "From the oldest record the stream keeps"
        NOW = "now", "From now"
        AT = "at", "From a time"

    class Status(models.TextChoices):
        PROVISIONING = "provisioning", "Provisioning"
        ACTIVE = "active", "Active"
        FAILED = "failed", "Failed"
        TEARING_DOWN = "tearing_down", "Tearing down"
        TEARDOWN_FAILED = "teardown_failed", "Teardown failed"
        REMOVED = "removed", "Removed"

    uid = models.CharField(max_length=32, unique=True, default=new_uid, editable=False)
    pool = models.ForeignKey("pools.DataPool", on_delete=models.CASCADE, related_name="aws_pipelines")
    connection = models.ForeignKey(AwsConnection, on_delete=models.PROTECT, related_name="pipelines")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PROVISIONING)
    delivery_mode = models.CharField(
        max_length=20, choices=Mode.choices, default=Mode.FIREHOSE, help_text="How changes reach Shoal."
    )
    # Where a pull starts reading a shard it has no checkpoint for (pools/pull/streams.py).
    pull_start = models.CharField(
        max_length=10,
        choices=Start.choices,
        default=Start.OLDEST,
        help_text="Where a pull starts reading the stream.",
    )
    pull_start_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a pull starts (From now: when the pipeline was created).",
    )

    # DynamoDB table (always the user's).
    table_name = models.CharField(max_length=255)
    table_arn = models.CharField(max_length=1024, blank=True)
    # Kinesis data stream.
    stream_name = models.CharField(max_length=128)
    stream_arn = models.CharField(max_length=2048, blank=True)
    stream_created = models.BooleanField(default=False, help_text="Shoal created it (else the user's).")
    stream_new = models.BooleanField(default=True, help_text="The user asked for a new stream.")
    # S3 bucket for failed deliveries.
    bucket_name = models.CharField(max_length=63)
    bucket_created = models.BooleanField(default=False)
    bucket_new = models.BooleanField(default=True)
    error_prefix = models.CharField(max_length=100, default="failed/")
    backup_prefix = models.CharField(max_length=100, default="backup/")
    # IAM role Firehose assumes (always Shoal's).
    role_name = models.CharField(max_length=64)
    role_arn = models.CharField(max_length=2048, blank=True)
    role_created = models.BooleanField(default=False)
    # Firehose stream (always Shoal's) and its CloudWatch log group.
    firehose_name = models.CharField(max_length=64)
    firehose_arn = models.CharField(max_length=2048, blank=True)
    firehose_created = models.BooleanField(default=False)
    log_group = models.CharField(max_length=512, blank=True)
    log_group_created = models.BooleanField(default=False)
    http_endpoint_name = models.CharField(max_length=256)
    endpoint_url = models.CharField(max_length=1000)
    buffer_size_mib = models.PositiveSmallIntegerField(default=1)
    buffer_interval_s = models.PositiveSmallIntegerField(default=60)
    retry_duration_s = models.PositiveSmallIntegerField(default=7200)
    content_encoding = models.CharField(max_length=4, default="NONE")
    # The table's Kinesis streaming destination.
    precision = models.CharField(max_length=12, default=STREAMING_PRECISION)
    destination_created = models.BooleanField(default=False, help_text="Shoal enabled it.")
    destination_enabled_at = models.DateTimeField(null=True, blank=True)
    # The table's DynamoDB stream (DynamoDB Streams pull).
    table_stream_created = models.BooleanField(default=False, help_text="Shoal turned the table's stream on.")
    keep_bucket = models.BooleanField(default=False, help_text="Teardown keeps the S3 bucket.")

    # Live status of the resources and failed deliveries, refreshed by the `check_pipeline` task.
    resource_status = models.JSONField(default=dict, blank=True)
    check_requested_at = models.DateTimeField(null=True, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    # "Replay failed deliveries": the last run.
    replay_requested_at = models.DateTimeField(null=True, blank=True)
    last_replay = models.JSONField(default=dict, blank=True)
    # The outcome of the last action run in the background ("Update Firehose endpoint").
    notice = models.TextField(blank=True)
    notice_at = models.DateTimeField(null=True, blank=True)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PipelineQuerySet.as_manager()

    class Meta:
        db_table = "pools_pipeline"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["pool"],
                condition=~models.Q(status="removed"),
                name="aws_one_live_pipeline_per_pool",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.table_name} → {self.pool}"

    def get_absolute_url(self) -> str:
        return reverse("aws:pipeline", args=[self.pk])

    @property
    def region(self) -> str:
        return self.connection.region

    @property
    def pulls(self) -> bool:
        """Shoal reads the stream itself (pools/pull/): no Firehose, no public endpoint."""
        return self.delivery_mode != self.Mode.FIREHOSE

    @property
    def pull_start_ms(self) -> int | None:
        """Epoch milliseconds a pull starts reading at; None: from the oldest record kept."""
        if self.pull_start == self.Start.OLDEST or self.pull_start_at is None:
            return None
        return int(self.pull_start_at.timestamp() * 1000)

    @property
    def running(self) -> bool:
        return self.status in (self.Status.PROVISIONING, self.Status.TEARING_DOWN)

    @property
    def phase(self) -> str:
        if self.status in (self.Status.TEARING_DOWN, self.Status.TEARDOWN_FAILED, self.Status.REMOVED):
            return PipelineStep.Phase.TEARDOWN
        return PipelineStep.Phase.PROVISION

    def phase_steps(self) -> list[PipelineStep]:
        return list(self.steps.filter(phase=self.phase).order_by("position"))

    @property
    def destination_emulated(self) -> bool:
        """The emulator cannot stream the table to Kinesis: the sandbox relay stands in (SandboxRelay)."""
        relay = getattr(self, "sandbox_relay", None)
        return bool(relay and relay.emulated)

    def tags(self) -> dict[str, str]:
        """Tags on everything Shoal creates: how a re-run recognises its own resources."""
        return {"shoal:pipeline": self.uid, "shoal:pool": self.pool.name[:256], "app": "shoal"}


class PipelineStep(models.Model):
    class Phase(models.TextChoices):
        PROVISION = "provision", "Provision"
        TEARDOWN = "teardown", "Tear down"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Not needed"

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="steps")
    phase = models.CharField(max_length=10, choices=Phase.choices)
    key = models.CharField(max_length=20)
    position = models.PositiveSmallIntegerField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    detail = models.TextField(blank=True, help_text="What the step found or did.")
    error = models.TextField(blank=True, help_text="AWS's error text when the step failed.")
    attempts = models.PositiveIntegerField(default=0)
    task_id = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "pools_pipelinestep"
        ordering = ["pipeline", "phase", "position"]
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "phase", "key"], name="aws_step_once"),
        ]

    def __str__(self) -> str:
        return f"{self.pipeline_id} {self.phase}/{self.key}: {self.state}"

    @property
    def finished(self) -> bool:
        return self.state in (self.State.DONE, self.State.SKIPPED)


class Snapshot(models.Model):
    """A pipeline's initial snapshot ("Backfill existing items"): a parallel Scan of the table, landed
    into the pool as INSERT change events older than any streamed change (pools/aws/snapshot.py).

    `segments` holds each Scan segment's position, saved after every page, so that a run stopped at
    any point resumes where it was: {"0": {"lek": {...} | None, "pages": 3, "items": 300,
    "rcu": 1.5, "finished": false}, ...}.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Queued"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Method(models.TextChoices):
        SCAN = "scan", "Scan"
        EXPORT = "export", "Export to S3"

    uid = models.CharField(max_length=32, unique=True, default=new_uid, editable=False)
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="snapshots")
    method = models.CharField(max_length=8, choices=Method.choices, default=Method.SCAN)
    # Export to S3 (pools/aws/export_snapshot.py): where, AWS's id and state, and each data file's
    # load: {"<dataFileS3Key>": {"items": n, "loaded": true}, ...}, saved after each file.
    export_bucket = models.CharField(max_length=63, blank=True)
    export_prefix = models.CharField(max_length=255, blank=True)
    export_arn = models.CharField(max_length=1024, blank=True)
    export_status = models.CharField(max_length=16, blank=True, help_text="DescribeExport's ExportStatus.")
    export_time = models.DateTimeField(null=True, blank=True, help_text="Every exported item's version.")
    export_files = models.JSONField(default=dict, blank=True)
    export_files_total = models.PositiveIntegerField(default=0)
    enable_pitr = models.BooleanField(
        default=False, help_text="Turn point-in-time recovery on for the export."
    )
    cancel_requested = models.BooleanField(default=False)
    table_name = models.CharField(max_length=255)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    total_segments = models.PositiveSmallIntegerField(default=4)
    max_rcu_per_second = models.FloatField(
        default=0, help_text="Read-capacity budget of the whole scan; 0 means no limit."
    )
    page_limit = models.PositiveIntegerField(
        default=0, help_text="Items per Scan page (Limit); 0: as many as fit in 1 MB."
    )
    key_names = models.JSONField(default=list, blank=True)
    segments = models.JSONField(default=dict, blank=True)
    item_count_estimate = models.BigIntegerField(null=True, blank=True, help_text="DescribeTable ItemCount.")
    items_done = models.BigIntegerField(default=0)
    pages_done = models.PositiveIntegerField(default=0)
    deliveries_stored = models.PositiveIntegerField(default=0)
    consumed_rcu = models.FloatField(default=0)
    throttled_seconds = models.FloatField(default=0, help_text="Time spent waiting to stay within budget.")
    pause_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    runs = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "pools_snapshot"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"snapshot {self.pk} of {self.table_name}: {self.status}"

    @property
    def segments_finished(self) -> int:
        return sum(1 for state in self.segments.values() if state.get("finished"))

    @property
    def percent(self) -> int:
        """Progress for the bar: items against the estimate (which DynamoDB refreshes about every six
        hours, so it can be off), capped below 100 until every segment has finished."""
        if self.status == self.Status.DONE:
            return 100
        if self.item_count_estimate:
            by_items = 100 * self.items_done / self.item_count_estimate
        else:
            by_items = 100 * self.segments_finished / max(self.total_segments, 1)
        return max(0, min(99, int(by_items)))


class SandboxRelay(models.Model):
    """Demo only: what the local sandbox relay (pools/aws/sandbox.py) keeps of a pipeline.

    The emulator cannot stream a table to Kinesis, so the relay reads the table's DynamoDB stream
    and delivers its changes to the pool as Firehose would. No row: the pipeline never met the relay.
    """

    pipeline = models.OneToOneField(
        Pipeline, on_delete=models.CASCADE, primary_key=True, related_name="sandbox_relay"
    )
    emulated = models.BooleanField(
        default=False, help_text="The emulator cannot stream; the sandbox relay stands in."
    )
    # Position in the table's DynamoDB stream: {stream ARN: {shard id: {"seq": last sequence number,
    # "finished": closed and read to its end}}} (rows from before kept {shard id: sequence number}).
    checkpoint = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = "sandbox relay"

    def __str__(self) -> str:
        return f"sandbox relay of pipeline {self.pipeline_id}"


class ShardCheckpoint(models.Model):
    """Where a pull reader (pools/pull/) is in one shard of a pipeline's stream: the last sequence
    number landed, saved in the same database transaction as the delivery that holds it, so a
    crash re-reads from exactly there (nothing skipped, nothing stored twice)."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="shard_checkpoints")
    stream = models.CharField(max_length=1024, help_text="The stream's ARN (DynamoDB Streams or Kinesis).")
    shard_id = models.CharField(max_length=128)
    sequence_number = models.CharField(max_length=128, blank=True)
    finished = models.BooleanField(default=False, help_text="A closed shard read to its end.")
    records = models.BigIntegerField(default=0)
    lag_ms = models.BigIntegerField(
        null=True, blank=True, help_text="How far behind the shard's newest record."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["pipeline", "stream", "shard_id"], name="one_checkpoint_per_shard"
            )
        ]

    def __str__(self) -> str:
        return f"{self.pipeline_id}:{self.shard_id}@{self.sequence_number or 'start'}"
