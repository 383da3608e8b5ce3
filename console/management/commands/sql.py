from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from console import warehouse_client
from console.tasks import run_sql


def render_table(columns: list[str], rows: list[list]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(c) for c in columns]
    for row in cells:
        for i, value in enumerate(row):
            widths[i] = min(max(widths[i], len(value)), 60)

    def line(values):
        return " | ".join(v[:60].ljust(widths[i]) for i, v in enumerate(values))

    out = [line(columns), "-+-".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    return "\n".join(out)


def _cell(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


class Command(BaseCommand):
    help = "Run read-only SQL in the warehouse (a Data Pool's name is its table name)."

    def add_arguments(self, parser):
        parser.add_argument("query", help='SQL, e.g. "SELECT count() FROM orders"; - reads stdin.')
        parser.add_argument("--format", choices=["table", "json"], default="table")
        parser.add_argument("--timeout", type=float, default=None, help="Seconds to wait.")

    def handle(self, *args, **opts):
        query = sys.stdin.read() if opts["query"] == "-" else opts["query"]
        if not query.strip():
            raise CommandError("no SQL given")
        try:
            result = warehouse_client.call(run_sql, query, timeout=opts["timeout"])
        except warehouse_client.WarehouseUnavailable as exc:
            raise CommandError(str(exc)) from None
        if "error" in result:
            raise CommandError(result["error"])
        if opts["format"] == "json":
            self.stdout.write(json.dumps({k: result[k] for k in ("columns", "types", "rows")}, default=str))
            return
        self.stdout.write(render_table(result["columns"], result["rows"]))
        note = " (truncated)" if result.get("truncated") else ""
        self.stdout.write(f"\n{len(result['rows'])} rows{note} in {result['elapsed_ms']:.1f} ms")
