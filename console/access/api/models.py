"""API keys: who calls Shoal's HTTP API, with which scope, for which pools, until when."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from console import roles

key_name_validator = RegexValidator(
    r"^[A-Za-z0-9_.-]{1,64}$",
    "Use letters, digits, dots, dashes and underscores (at most 64): the name is the ClickHouse user name.",
)


class ApiKey(models.Model):
    """An API key. Only a hash of the key is kept: it is shown once, when created.

    scope `manage`: the management API with the rights of `role` (editor, or admin), and queries
    over every pool.
    scope `query`: queries only (/api/v1/sql, /clickhouse), over `limited_pools` when `limited`.
    """

    class Scope(models.TextChoices):
        MANAGE = "manage", "Manage (an editor's rights, and queries over every pool)"
        QUERY = "query", "Query (read its pools only)"

    name = models.CharField(max_length=64, unique=True, validators=[key_name_validator])
    scope = models.CharField(max_length=10, choices=Scope.choices)
    role = models.CharField(
        max_length=10,
        choices=[("editor", "Editor"), ("admin", "Admin")],
        default="editor",
        help_text="Manage keys: the console role whose rights the key has (admin: also rotate and "
        "show pools' access keys). Query keys read only.",
    )
    # The pools themselves, not their names: a pool deleted and made again under the same name is
    # another pool, which the key does not read. A limited key whose pools are all gone reads none.
    limited = models.BooleanField(
        default=False, help_text="Query keys: read only the pools below (none, once they are deleted)."
    )
    limited_pools = models.ManyToManyField(
        "pools.DataPool",
        blank=True,
        related_name="+",
        help_text="Query keys: the Data Pools it may read, when limited.",
    )
    prefix = models.CharField(max_length=16, editable=False, help_text="The key's first characters.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return self.name

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def active(self) -> bool:
        return not self.revoked and not self.expired

    @property
    def state(self) -> str:
        return "revoked" if self.revoked else "expired" if self.expired else "active"

    def has_role(self, role: str) -> bool:
        """Whether the key may do what a console user of `role` may (console.roles)."""
        own = self.role if self.scope == self.Scope.MANAGE else roles.VIEWER
        return roles.ROLES.index(own) >= roles.ROLES.index(role)

    def readable_pools(self) -> list[str] | None:
        """The names the pools this key's queries may name have now; None for all."""
        if self.scope == self.Scope.QUERY and self.limited:
            return sorted(self.limited_pools.values_list("name", flat=True))
        return None
