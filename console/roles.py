"""Who may do what: three roles, as Django groups with permissions.

viewer  pages, Preview Data, the SQL Console (read-only SQL)
editor  + create and delete Data Pools and Materialized Views, send test events, backfill, replay
admin   + AWS connections and pipelines, reveal and rotate access keys, users (the Django admin)

Every view states the role it needs with `@requires(ROLE)` (or is public by design with Django's
`login_not_required`); LoginRequiredMiddleware makes any view that says neither sign-in only, and
tests/test_roles.py fails for a URL that is not in its table. Superusers have every permission.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

VIEWER, EDITOR, ADMIN = "viewer", "editor", "admin"
ROLES = (VIEWER, EDITOR, ADMIN)
DESCRIPTIONS = {
    VIEWER: "pages, Preview Data and the SQL Console",
    EDITOR: "a viewer who also creates and deletes Data Pools and Materialized Views, sends test "
    "events, backfills and replays",
    ADMIN: "an editor who also manages AWS connections and pipelines, access keys and users",
}
# The permission (app_label.codename) that stands for each role; a role has its own and those below.
PERMISSIONS = {VIEWER: "console.view_console", EDITOR: "console.edit_data", ADMIN: "console.administer"}
# The apps whose models admins manage in the Django admin.
ADMIN_APPS = ["auth", "console", "pools", "aws", "views_mv", "sessions", "api"]


def has_role(user, role: str) -> bool:
    return bool(user.is_authenticated and user.is_active and user.has_perm(PERMISSIONS[role]))


def role_of(user) -> str | None:
    for role in reversed(ROLES):
        if has_role(user, role):
            return role
    return None


def requires(role: str) -> Callable:
    """View decorator: 403 unless the signed-in user has `role` (sign-in itself is the middleware's)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")

    def decorator(view):
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs):
            if not has_role(request.user, role):
                raise PermissionDenied(f"This needs the {role} role ({DESCRIPTIONS[role]}).")
            return view(request, *args, **kwargs)

        wrapped.shoal_role = role
        return wrapped

    return decorator


def ensure_groups() -> dict[str, Group]:
    """The three groups with their permissions (idempotent; run after every migrate)."""
    own = {
        role: Permission.objects.get(content_type__app_label="console", codename=perm.split(".")[1])
        for role, perm in PERMISSIONS.items()
    }
    groups = {}
    for index, role in enumerate(ROLES):
        group, _ = Group.objects.get_or_create(name=role)
        wanted = [own[r] for r in ROLES[: index + 1]]
        if role == ADMIN:
            # The Django admin: every model of Shoal and the users and groups.
            wanted += list(Permission.objects.filter(content_type__app_label__in=ADMIN_APPS))
        group.permissions.set(wanted)
        groups[role] = group
    return groups


def set_role(user, role: str | None) -> None:
    """Give `user` exactly one role (None: none). Admins are staff, so that the Django admin opens."""
    if role is not None and role not in ROLES:
        raise ValueError(f"Choose a role among {', '.join(ROLES)}.")
    groups = ensure_groups()
    user.groups.remove(*groups.values())
    if role:
        user.groups.add(groups[role])
    user.is_staff = role == ADMIN or user.is_superuser
    user.save(update_fields=["is_staff"])
    # has_perm caches the user's permissions on the instance.
    for cache in ("_perm_cache", "_group_perm_cache", "_user_perm_cache"):
        user.__dict__.pop(cache, None)


def context(request: HttpRequest) -> dict:
    """Template context: what the signed-in user may do, so pages hide what they cannot."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"can": {"view": False, "edit": False, "administer": False}, "role": None}
    return {
        "can": {
            "view": has_role(user, VIEWER),
            "edit": has_role(user, EDITOR),
            "administer": has_role(user, ADMIN),
        },
        "role": role_of(user),
    }
