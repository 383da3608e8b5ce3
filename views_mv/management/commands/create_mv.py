from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from views_mv import services
from views_mv.models import Backfill, MaterializedView


class Command(BaseCommand):
    help = "Create a Materialized View from a SELECT over a Data Pool, into a new (or existing) pool."

    def create_parser(self, prog_name, subcommand, **kwargs):
        # --version names the version column here (the flags are part of Shoal's interface), so
        # it replaces Django's own --version.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--sql-file", required=True, help="File with the SELECT (- for stdin).")
        parser.add_argument("--target-pool", required=True, help="The Data Pool the view writes into.")
        parser.add_argument("--description", default="")
        parser.add_argument(
            "--mutable", action="store_true", help="Records are updated (ReplacingMergeTree)."
        )
        parser.add_argument("--unique", nargs="*", default=[], help="Columns that identify a record.")
        parser.add_argument("--time", default=None, help="The column you query by time.")
        parser.add_argument("--filter", nargs="*", default=[], help="Columns you always filter by.")
        parser.add_argument(
            "--version",
            default=None,
            help="An updated_at or version column; 'arrival' for the order changes arrive in. Default for "
            "a DynamoDB source: the time of each change, so that the latest change wins.",
        )
        parser.add_argument("--deleted", default=None, help="Delete-flag column (default: a Bool 'deleted').")
        parser.add_argument(
            "--type",
            action="append",
            default=[],
            metavar="COL=TYPE",
            help="Store a column as another type than the query declares, e.g. --type quantity=Int64.",
        )
        parser.add_argument(
            "--accept-type-changes",
            action="store_true",
            help="Accept a --type that changes values (e.g. NULL stored as 0); without it, such a type "
            "is refused with the sampled values it would change.",
        )
        parser.add_argument("--backfill", action="store_true", help="Copy the records already in the source.")
        parser.add_argument("--wait", action="store_true", help="Wait until the backfill is done.")
        parser.add_argument(
            "--nullable-keys",
            action="store_true",
            help="Accept Nullable key columns (NULL is stored as the type's default).",
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts):
        sql = sys.stdin.read() if opts["sql_file"] == "-" else Path(opts["sql_file"]).read_text()
        bad = [t for t in opts["type"] if "=" not in t]
        if bad:
            raise CommandError(f"--type takes COLUMN=TYPE, e.g. --type quantity=Int64 (got {bad[0]!r}).")
        types = dict(t.split("=", 1) for t in opts["type"])
        try:
            mv = services.create_mv(
                opts["name"],
                sql,
                target_pool=opts["target_pool"],
                description=opts["description"],
                mutable=opts["mutable"],
                unique=opts["unique"],
                time_column=opts["time"],
                filters=opts["filter"],
                version=opts["version"],
                deleted=opts["deleted"],
                column_types=types,
                backfill=opts["backfill"],
                nullable_keys=opts["nullable_keys"],
                accept_type_changes=opts["accept_type_changes"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        mv = self._wait(mv, backfill=opts["backfill"] and opts["wait"])
        data = services.mv_as_dict(mv)
        if opts["json"]:
            self.stdout.write(json.dumps(data, indent=2))
            return
        self.stdout.write(self.style.SUCCESS(f"Created Materialized View {mv.name} → {data['target_pool']}"))
        self.stdout.write(f"  engine {data['engine']}  ORDER BY ({data['sorting_key']})")

    def _wait(self, mv: MaterializedView, *, backfill: bool, timeout: float = 3600) -> MaterializedView:
        deadline = time.monotonic() + timeout
        while True:
            mv = MaterializedView.objects.select_related("source_pool", "target_pool").get(pk=mv.pk)
            if mv.status == MaterializedView.Status.FAILED:
                raise CommandError(f"Creating the view failed: {mv.status_detail}")
            done = mv.status == MaterializedView.Status.ACTIVE
            if done and backfill:
                b = Backfill.objects.filter(mv=mv).first()
                if b and b.status == Backfill.Status.FAILED:
                    raise CommandError(f"The backfill failed: {b.error}")
                done = b is not None and b.status == Backfill.Status.DONE
            if done:
                return mv
            if time.monotonic() > deadline:
                raise CommandError("Timed out waiting for the warehouse worker.")
            time.sleep(0.2)
