"""`make demo`: the whole stack plus a moto server (the AWS stand-in) and the sandbox relay."""

from __future__ import annotations

import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from console import setup_token, supervisor


class Command(BaseCommand):
    help = (
        "Run Shoal with a local AWS sandbox: web, workers and beat, a moto server on loopback, and "
        "the sandbox relay that stands in for DynamoDB → Kinesis → Firehose."
    )

    def add_arguments(self, parser):
        parser.add_argument("--moto-port", type=int, default=5055, help="Port of the moto server (loopback).")
        parser.add_argument("--region", default="us-east-1")

    def handle(self, *args, **opts):
        supervisor.require_redis(settings.REDIS_URL)
        python = sys.executable
        moto_url = f"http://127.0.0.1:{opts['moto_port']}"
        procs = supervisor.plan(settings.PORT, python) + [
            supervisor.Proc(
                "moto", [python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(opts["moto_port"])]
            ),
            supervisor.Proc(
                "relay",
                [
                    python,
                    str(settings.BASE_DIR / "manage.py"),
                    "demo_relay",
                    "--seed",
                    "--endpoint-url",
                    moto_url,
                    "--region",
                    opts["region"],
                    "--base-url",
                    f"http://127.0.0.1:{settings.PORT}",
                ],
            ),
        ]
        self.stdout.write(
            f"Shoal sandbox on http://127.0.0.1:{settings.PORT}/  (data: {settings.DATA_DIR})\n"
            f"  AWS emulator (moto, in memory) on {moto_url}; AWS connection “Local sandbox (moto)”.\n"
            "  Open the pool my_dynamo_orders_change_events, press “Connect DynamoDB”, pick the table\n"
            "  `orders`, and click through. Then “Put a sample order”, “Modify an order” or “Delete an\n"
            "  order” on the pipeline page, or from another terminal `make demo-order` (CHANGE=--update,\n"
            "  CHANGE=--delete), and watch Preview Data."
        )
        notice = setup_token.notice(self.style.WARNING)
        sys.exit(supervisor.run(procs, data_dir=settings.DATA_DIR, notice=notice))
