"""Rebuild a view's Data Pool with the types its SELECT declares, copying the source again."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from views_mv import services
from views_mv.models import MaterializedView


class Command(BaseCommand):
    help = "Make a view's Data Pool again with the column types its query declares, and backfill it."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The Materialized View.")

    def handle(self, *args, **opts):
        mv = MaterializedView.objects.select_related("target_pool").filter(name=opts["name"]).first()
        if mv is None:
            raise CommandError(f"No Materialized View named {opts['name']!r}.")
        try:
            services.rebuild_mv(mv)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        mv.target_pool.refresh_from_db()
        columns = ", ".join(f"{n} {t}" for n, t in mv.target_pool.columns)
        self.stdout.write(self.style.SUCCESS(f"Rebuilding {mv.target_pool.name}: {columns}"))
