"""`create_api_key NAME --scope manage|query [--role editor|admin] [--pools POOL …] [--expires …]
[--json]`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from console.access.api import keys
from console.access.api.models import ApiKey


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"--expires {text!r}: give a date or time, e.g. 2027-01-31 or 2027-01-31T12:00Z."
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = (
        "Create an API key and print it (once: only its hash is kept). manage: the management API "
        "with an editor's rights and queries over every pool; query: queries only, over --pools if given."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--scope", choices=ApiKey.Scope.values, required=True)
        parser.add_argument(
            "--role",
            choices=["editor", "admin"],
            default="editor",
            help="Manage keys: an editor's rights (default) or an admin's (rotate and show access keys); "
            "query keys only read.",
        )
        parser.add_argument("--pools", nargs="+", default=[], metavar="POOL")
        parser.add_argument("--expires", type=_when, help="Expiry (ISO 8601; UTC unless a zone is given).")
        parser.add_argument(
            "--json", action="store_true", help="Print JSON: name, key, scope, pools, expires_at."
        )

    def handle(self, *args, **opts):
        try:
            new = keys.create_key(
                opts["name"],
                opts["scope"],
                pools=opts["pools"],
                expires_at=opts["expires"],
                role=opts["role"],
            )
        except ValidationError as exc:
            raise CommandError(" ".join(m for ms in exc.message_dict.values() for m in ms)) from None
        api_key = new.api_key
        if opts["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "name": api_key.name,
                        "key": new.key,
                        "scope": api_key.scope,
                        "role": api_key.role if api_key.scope == "manage" else None,
                        "pools": api_key.readable_pools(),
                        "expires_at": api_key.expires_at.isoformat() if api_key.expires_at else None,
                    }
                )
            )
            return
        self.stdout.write(f"API key {api_key.name} ({api_key.scope}): {new.key}")
        self.stdout.write("Keep it now: Shoal stores only its hash.")
