"""`set_role USER ROLE`: give a user one of Shoal's roles (viewer, editor, admin) or none."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from console import roles


class Command(BaseCommand):
    help = "Give a user a role: " + "; ".join(f"{r}: {roles.DESCRIPTIONS[r]}" for r in roles.ROLES) + "."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("role", choices=[*roles.ROLES, "none"])

    def handle(self, *args, **opts):
        user = get_user_model().objects.filter(username=opts["username"]).first()
        if user is None:
            raise CommandError(f"There is no user {opts['username']!r}; create one in the Django admin.")
        role = None if opts["role"] == "none" else opts["role"]
        roles.set_role(user, role)
        self.stdout.write(f"{user.username} is now {role or 'without a role'}.")
