"""The SQL Console's history: every query a user ran, with how it went."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class QueryRun(models.Model):
    """One run of a user's SQL in the SQL Console; the rows themselves are not kept."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="query_runs")
    sql = models.TextField()
    task_id = models.CharField(max_length=64, blank=True, help_text="The warehouse task running it.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    elapsed_ms = models.FloatField(null=True, blank=True, help_text="Time in the warehouse.")
    row_count = models.PositiveIntegerField(null=True, blank=True)
    truncated = models.BooleanField(default=False, help_text="The result was cut to SQL_MAX_RESULT_ROWS.")
    failed = models.BooleanField(default=False)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"])]
        verbose_name = "SQL Console query"
        verbose_name_plural = "SQL Console history"

    def __str__(self) -> str:
        return self.title

    @property
    def title(self) -> str:
        """The SQL on one line, without whole-line comments, for lists."""
        lines = [line.strip() for line in self.sql.splitlines()]
        text = " ".join(line for line in lines if line and not line.startswith("--")) or self.sql.strip()
        return text[:117] + "…" if len(text) > 120 else text

    @property
    def pending(self) -> bool:
        return self.finished_at is None

    @classmethod
    def prune(cls, user, keep: int) -> None:
        """Forget a user's runs past the newest `keep`."""
        old = list(cls.objects.filter(user=user).values_list("pk", flat=True)[keep : keep + 100])
        if old:
            cls.objects.filter(pk__in=old).delete()

    def finish(self, data: dict) -> bool:
        """Record a run_sql result; False if another request recorded it first."""
        if "error" in data:
            fields = {"failed": True, "error": data["error"]}
        else:
            fields = {
                "row_count": len(data["rows"]),
                "elapsed_ms": data["elapsed_ms"],
                "truncated": bool(data.get("truncated")),
            }
        fields["finished_at"] = timezone.now()
        # Conditional: a result is recorded once, whichever poll sees it first.
        done = QueryRun.objects.filter(pk=self.pk, finished_at__isnull=True).update(**fields) == 1
        if done:
            for name, value in fields.items():
                setattr(self, name, value)
        return done


class Access(models.Model):
    """No table: the permissions that stand for Shoal's roles (console.roles)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_console", "Viewer: pages, Preview Data and the SQL Console"),
            ("edit_data", "Editor: create and delete Data Pools and Materialized Views, backfill, replay"),
            ("administer", "Admin: AWS connections and pipelines, access keys, users"),
        ]
