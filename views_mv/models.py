"""Materialized Views: SQL over a Data Pool whose result flows into another Data Pool."""

from __future__ import annotations

from django.db import models
from django.urls import reverse

from pools.models import DataPool, name_validator


class MaterializedView(models.Model):
    class Status(models.TextChoices):
        CREATING = "creating", "Creating"
        ACTIVE = "active", "Active"
        FAILED = "failed", "Failed"
        DELETING = "deleting", "Deleting"

    name = models.CharField(max_length=63, unique=True, validators=[name_validator])
    description = models.TextField(blank=True)
    # `sql` is what runs in the warehouse (user_sql with JSON paths made readable and, for a
    # DynamoDB source, the change-time version added); `user_sql` is the SELECT as written.
    sql = models.TextField(help_text="The SELECT the warehouse runs (effective SQL).")
    user_sql = models.TextField(blank=True, help_text="The SELECT as the user wrote it.")
    source_pool = models.ForeignKey(DataPool, on_delete=models.PROTECT, related_name="feeds")
    target_pool = models.ForeignKey(DataPool, on_delete=models.PROTECT, related_name="fed_by")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CREATING)
    status_detail = models.TextField(blank=True)
    # How the target decides which change of a record wins (shown on the view's page).
    versioning = models.CharField(max_length=500, blank=True)
    # Asked for at creation; the Backfill row appears once the view is attached (in the worker).
    backfill_requested = models.BooleanField(default=False)
    # Columns of the target stored as another type than the SELECT declares (views_mv/typecheck.py),
    # as found by the last check: [{"column", "stored", "declared"}].
    narrowed_types = models.JSONField(default=list, blank=True)
    types_checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "Materialized View"

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("views_mv:detail", args=[self.name])

    @property
    def written_sql(self) -> str:
        return self.user_sql or self.sql

    @property
    def warehouse_name(self) -> str:
        """The view object in the warehouse (the pool database holds pools under their names)."""
        return f"_mv_{self.name}"


class Backfill(models.Model):
    """Copying what the source pool held when the view was attached, in resumable chunks."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    mv = models.OneToOneField(MaterializedView, on_delete=models.CASCADE, related_name="backfill")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # [[delivery id, …], …]: each chunk is a list of the source's _delivery_id values.
    chunks = models.JSONField(default=list)
    chunk_rows = models.JSONField(default=list)
    # [[first _received_at ms, last _received_at ms], …] of each chunk: the source's sorting key,
    # so that a chunk's INSERT reads only its granules.
    chunk_bounds = models.JSONField(default=list)
    chunks_done = models.IntegerField(default=0)
    rows_total = models.BigIntegerField(default=0)
    rows_done = models.BigIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"backfill of {self.mv_id}"

    @property
    def percent(self) -> int:
        return 100 if not self.rows_total else int(self.rows_done * 100 / self.rows_total)

    def rate(self) -> float | None:
        """Rows per second so far."""
        if not self.started_at or not self.rows_done:
            return None
        end = self.finished_at or self.heartbeat_at
        seconds = (end - self.started_at).total_seconds() if end else 0
        return self.rows_done / seconds if seconds > 0 else None

    def eta_seconds(self) -> float | None:
        rate = self.rate()
        if not rate or self.status == self.Status.DONE:
            return None
        return (self.rows_total - self.rows_done) / rate


class ReplicaCheck(models.Model):
    """A comparison of a view's pool with the DynamoDB table it replicates (views_mv/replica.py)."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    mv = models.ForeignKey(MaterializedView, on_delete=models.CASCADE, related_name="replica_checks")
    connection = models.ForeignKey("aws.AwsConnection", on_delete=models.CASCADE)
    table_name = models.CharField(max_length=255)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    report = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"replica check of {self.mv_id} against {self.table_name}"


class ViewFailure(models.Model):
    """Source records a view could not transform, with the warehouse's error.

    The rows are found by splitting the delivery (by event id) until the failing ones are alone;
    `retry` runs the view again over exactly these rows, so that once the view is fixed its target
    converges without anything copied twice.
    """

    mv = models.ForeignKey(MaterializedView, on_delete=models.CASCADE, related_name="failures")
    delivery = models.ForeignKey("pools.Delivery", on_delete=models.CASCADE, related_name="view_failures")
    event_id = models.CharField(max_length=255, help_text="eventID of the source record(s).")
    error = models.TextField()
    attempts = models.IntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    retried_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["mv", "delivery", "event_id"], name="view_failure_once_per_record"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.mv_id}: {self.delivery_id}/{self.event_id}"


class ViewRun(models.Model):
    """An insert of a view's rows that went through, kept until its load batch (or backfill chunk,
    or repair) is finished, so that running it again after a crash skips it.

    ClickHouse's insert deduplication cannot be relied on here: for an INSERT … SELECT from a
    table, the token is extended with how the source was read, which changes once the source's
    parts are merged."""

    mv = models.ForeignKey(MaterializedView, on_delete=models.CASCADE, related_name="runs")
    scope = models.CharField(max_length=200, help_text="The batch, chunk or repair it belongs to.")
    token = models.CharField(max_length=400)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mv", "token"], name="view_run_once")]
        indexes = [models.Index(fields=["scope"], name="view_run_scope")]

    def __str__(self) -> str:
        return f"{self.mv_id}: {self.token}"
