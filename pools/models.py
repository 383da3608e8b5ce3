"""Data Pools, the Firehose deliveries they receive, and records kept aside in quarantine."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from console import encryption
from pools import sources, tables

name_validator = RegexValidator(
    r"^[A-Za-z_][A-Za-z0-9_]{0,62}$",
    "Use letters, digits and underscores, starting with a letter or underscore (at most 63).",
)


def new_access_key() -> str:
    return secrets.token_urlsafe(32)


def access_key_digest(key: str) -> str:
    """SHA-256 of an access key. Unsalted on purpose: keys are 256 random bits, so the digest
    cannot be reversed by guessing, and the endpoint can check a key with one fast hash."""
    return hashlib.sha256(key.encode()).hexdigest()


@functools.cache
def _stand_in_hash() -> str:
    """A hash of a random password with the current hasher: what a pool without Basic credentials
    checks a presented password against, to take as long as one with them."""
    return make_password(secrets.token_urlsafe(16))


def new_public_id() -> str:
    return uuid.uuid4().hex


class DataPool(models.Model):
    class Status(models.TextChoices):
        CREATED = "created", "Created"
        LIVE = "live", "Live"
        FAILED = "failed", "Failed"
        DELETING = "deleting", "Deleting"

    class Kind(models.TextChoices):
        DYNAMODB = "dynamodb", "DynamoDB"
        MATERIALIZED = "materialized", "Materialized View"

    name = models.CharField(
        max_length=63,
        unique=True,
        validators=[name_validator],
        help_text="Also the table name in SQL.",
    )
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.DYNAMODB)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CREATED)
    status_detail = models.TextField(blank=True)
    public_id = models.CharField(max_length=32, unique=True, default=new_public_id, editable=False)

    # Table settings (what the warehouse table is created with).
    engine = models.CharField(max_length=300, default="MergeTree")
    sorting_key = models.CharField(max_length=1000, default="_received_at")
    partition_key = models.CharField(max_length=500, blank=True, default="toYYYYMM(_received_at)")
    timestamp_column = models.CharField(max_length=200, blank=True, default="_received_at")
    version_column = models.CharField(max_length=200, blank=True)
    # ReplacingMergeTree's is_deleted column: rows whose latest version has it true are hidden.
    deleted_column = models.CharField(max_length=200, blank=True)
    # Columns of a pool fed by a Materialized View ([[name, type], …]); empty for a DynamoDB pool,
    # whose columns are the change-event columns.
    columns = models.JSONField(default=list, blank=True)

    # Authentication of Firehose deliveries. The access key is kept encrypted (for the console to
    # reveal it and for provisioning to hand it to Firehose) and as a SHA-256 digest (for the
    # endpoint to check it without decrypting); never as itself. See the `access_key` property.
    access_key_encrypted = models.TextField(blank=True, editable=False)
    access_key_digest = models.CharField(max_length=64, blank=True, editable=False)
    access_key_rotated_at = models.DateTimeField(default=timezone.now)
    basic_auth_user = models.CharField(max_length=150, blank=True)
    basic_auth_password = models.CharField(max_length=200, blank=True, help_text="Hashed.")

    # Counters kept by the loader, so that lists need no warehouse query.
    record_count = models.BigIntegerField(default=0)
    quarantined_count = models.BigIntegerField(default=0)
    last_delivery_at = models.DateTimeField(null=True, blank=True)
    # Totals of the deliveries pruned after DELIVERY_RETENTION_DAYS (pools/retention.py), so that
    # counters over all deliveries (/metrics) keep counting what is no longer listed.
    pruned_deliveries = models.BigIntegerField(default=0, editable=False)
    pruned_records = models.BigIntegerField(default=0, editable=False)
    pruned_bytes = models.BigIntegerField(default=0, editable=False)
    pruned_loaded = models.BigIntegerField(default=0, editable=False)
    # Refreshed by beat from the warehouse (compressed bytes on disk).
    disk_bytes = models.BigIntegerField(default=0)
    stats_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("pools:detail", args=[self.name])

    @property
    def table(self) -> str:
        """The quoted warehouse table name (the pool's name, in the pool database)."""
        return tables.table_ref(self.name)

    @property
    def is_mutable(self) -> bool:
        return self.engine.startswith("ReplacingMergeTree")

    @property
    def receives_deliveries(self) -> bool:
        """Whether deliveries land in the pool (pushed by Firehose or read by Shoal): its records
        come from a source type, as the source registry declares, not from a Materialized View."""
        return sources.fed_by_source(self)

    def column_list(self) -> list[tuple[str, str]]:
        """Every column of the pool's table, Shoal's own included (as the Schema table lists them)."""
        return [(name, type_) for name, type_, _, _ in tables.schema_rows(self)]

    def endpoint_path(self) -> str:
        return reverse("pools:ingest", args=[self.public_id])

    def endpoint_url(self) -> str:
        return settings.PUBLIC_BASE_URL + self.endpoint_path()

    def set_basic_auth(self, user: str, password: str) -> None:
        self.basic_auth_user = user
        self.basic_auth_password = make_password(password) if password else ""

    def check_basic_auth(self, user: str, password: str) -> bool:
        """The same work whatever is wrong: the password is checked against the pool's hash, or a
        stand-in hash of the same kind when it has none, before the user name is compared, so the
        time of the answer does not tell a right user name from a wrong one."""
        password_ok = check_password(password, self.basic_auth_password or _stand_in_hash())
        user_ok = hmac.compare_digest(user.encode(), self.basic_auth_user.encode())
        return bool(self.basic_auth_user and self.basic_auth_password) and user_ok and password_ok

    @property
    def access_key(self) -> str:
        """The key Firehose sends in X-Amz-Firehose-Access-Key ('' for a pool fed by a view)."""
        return encryption.decrypt(self.access_key_encrypted, encryption.POOL_ACCESS_KEY)

    @access_key.setter
    def access_key(self, value: str) -> None:
        self.access_key_encrypted = encryption.encrypt(value, encryption.POOL_ACCESS_KEY)
        self.access_key_digest = access_key_digest(value) if value else ""

    @property
    def access_key_hint(self) -> str:
        """The key's last four characters, to tell keys apart without showing them."""
        return f"…{self.access_key[-4:]}" if self.access_key_encrypted else ""

    def check_access_key(self, key: str) -> bool:
        # One SHA-256 and a constant-time comparison: no decryption on the hot path.
        if not self.access_key_digest or not key:
            return False
        return hmac.compare_digest(access_key_digest(key), self.access_key_digest)

    @property
    def key_rotated(self) -> bool:
        """Whether the access key was ever rotated (the pool's first key carries its creation time)."""
        return self.access_key_rotated_at - self.created_at > timedelta(seconds=1)

    def rotate_access_key(self) -> str:
        key = new_access_key()
        self.access_key = key
        self.access_key_rotated_at = timezone.now()
        self.save(
            update_fields=["access_key_encrypted", "access_key_digest", "access_key_rotated_at", "updated_at"]
        )
        return key

    def save(self, *args, **kwargs) -> None:
        # A new pool that receives Firehose deliveries gets a key of its own.
        if self._state.adding and not self.access_key_encrypted and self.receives_deliveries:
            self.access_key = new_access_key()
        super().save(*args, **kwargs)


class LoadBatch(models.Model):
    """Deliveries loaded by one INSERT (group commit). Its members are saved before the insert and
    never change, so that a load repeated after a crash inserts the same rows under the same
    deduplication token."""

    pool = models.ForeignKey(DataPool, on_delete=models.CASCADE, related_name="load_batches")
    token = models.CharField(max_length=32, default=new_public_id, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"batch {self.pk} of pool {self.pool_id}"

    @property
    def dedup_token(self) -> str:
        return f"{self.pool.public_id}/batch/{self.token}"


class Delivery(models.Model):
    """One Firehose request, stored as received before it was acknowledged."""

    class Status(models.TextChoices):
        LANDED = "landed", "Landed"
        LOADING = "loading", "Loading"
        LOADED = "loaded", "Loaded"
        FAILED = "failed", "Failed"

    pool = models.ForeignKey(DataPool, on_delete=models.CASCADE, related_name="deliveries")
    request_id = models.CharField(max_length=255)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.LANDED)
    received_at = models.DateTimeField(default=timezone.now)
    firehose_timestamp = models.BigIntegerField(null=True, blank=True)
    source_arn = models.CharField(max_length=500, blank=True)
    record_count = models.IntegerField(default=0)
    body_bytes = models.IntegerField(default=0)
    content_encoding = models.CharField(max_length=10, blank=True)
    # The body waits here (INGEST_LANDING=database, as received) or in the journal file at
    # body_path (INGEST_LANDING=files, decompressed); both are emptied once it is in the warehouse.
    body = models.BinaryField(default=b"")
    body_path = models.CharField(max_length=200, blank=True)

    claim_token = models.CharField(max_length=64, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # The process that holds the claim (console/liveness.py), so that a dead one's claim is freed
    # at once; '' for a process that does not beat, whose claim only its age frees.
    claimed_by = models.CharField(max_length=200, blank=True, default="")
    attempts = models.IntegerField(default=0)
    # After a transient fault (disk full, warehouse unreachable, …) the load waits until then.
    retry_at = models.DateTimeField(null=True, blank=True)
    batch = models.ForeignKey(
        LoadBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    loaded_at = models.DateTimeField(null=True, blank=True)
    loaded_count = models.IntegerField(default=0)
    quarantined_count = models.IntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["pool", "request_id"], name="delivery_once_per_request"),
        ]
        indexes = [
            models.Index(fields=["status", "claimed_at"], name="delivery_status_claimed"),
            models.Index(fields=["pool", "status"], name="delivery_pool_status"),
        ]

    def __str__(self) -> str:
        return f"{self.pool_id}:{self.request_id}"

    @property
    def dedup_token(self) -> str:
        """The ClickHouse insert deduplication token: a re-run load of this delivery is a no-op.

        Built from values that are never reused (the pool's random id and Firehose's request id),
        so that a token cannot collide with an older insert, even after Django's database was
        restored from a backup and its ids started over.
        """
        return f"{self.pool.public_id}/{self.request_id}"


class QuarantinedRecord(models.Model):
    """A record of a delivery that is not a DynamoDB change record, kept with the reason."""

    pool = models.ForeignKey(DataPool, on_delete=models.CASCADE, related_name="quarantine")
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="quarantined")
    position = models.IntegerField(help_text="Index of the record in the delivery (from 0).")
    data = models.TextField(help_text="The record's base64 data, as Firehose sent it.")
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    replayed_at = models.DateTimeField(null=True, blank=True)
    replay_delivery = models.ForeignKey(
        Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="replays"
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "position"], name="quarantine_once_per_record"),
        ]

    def __str__(self) -> str:
        return f"{self.delivery_id}#{self.position}: {self.reason}"
