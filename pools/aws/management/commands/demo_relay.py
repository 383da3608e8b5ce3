"""The sandbox relay (`make demo`): DynamoDB stream → Firehose-format deliveries to the pool.

Stands in, in the local sandbox only, for what the moto emulator cannot do (DynamoDB → Kinesis →
Firehose): see pools/aws/sandbox.py. With --seed it first waits for the emulator and creates the
sandbox's AWS connection, the `orders` table and a Data Pool to connect.
"""

from __future__ import annotations

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from pools.aws import sandbox
from pools.aws.clients import connect
from pools.models import DataPool
from pools.services import create_pool


class Command(BaseCommand):
    help = (
        "SANDBOX ONLY: relay the DynamoDB stream of each sandbox pipeline's table to its Data Pool "
        "in the Firehose HTTP format, standing in for DynamoDB → Kinesis → Firehose, which the "
        "moto emulator cannot do."
    )

    def add_arguments(self, parser):
        parser.add_argument("--endpoint-url", default="", help="The emulator, e.g. http://127.0.0.1:5055.")
        parser.add_argument("--region", default="us-east-1")
        parser.add_argument(
            "--seed", action="store_true", help="Create the connection, table and pool first."
        )
        parser.add_argument(
            "--base-url",
            default="",
            help="Where this Shoal answers (default http://127.0.0.1:$PORT); deliveries go to "
            "<base-url>/ingest/firehose/<pool id>.",
        )
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds between passes.")
        parser.add_argument("--once", action="store_true", help="One pass, then exit.")

    def handle(self, *args, **opts):
        logging.getLogger("pools.aws").setLevel(logging.INFO)
        if opts["seed"]:
            if not opts["endpoint_url"]:
                raise CommandError("--seed needs --endpoint-url (the emulator)")
            self._seed(opts["endpoint_url"], opts["region"])
        relay = sandbox.Relay(opts["base_url"] or f"http://127.0.0.1:{settings.PORT}")
        if opts["once"]:
            self.stdout.write(f"delivered {relay.run_once()} change records")
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        self.stdout.write("sandbox relay: watching the DynamoDB streams of sandbox pipelines")
        relay.run_forever(stop, opts["interval"])

    def _seed(self, endpoint_url: str, region: str) -> None:
        sandbox.wait_for_emulator(endpoint_url)
        connection = sandbox.ensure_connection(endpoint_url, region)
        if sandbox.create_orders_table(connect(connection)):
            self.stdout.write(f"sandbox: created the table {sandbox.ORDERS_TABLE} with a few orders")
        if not DataPool.objects.filter(name=sandbox.DEMO_POOL).exists():
            create_pool(sandbox.DEMO_POOL, description="Taqueria orders from the sandbox's DynamoDB table")
            self.stdout.write(f"sandbox: created the Data Pool {sandbox.DEMO_POOL}")
        self.stdout.write(f"sandbox: AWS connection “{connection.name}” → {endpoint_url}")
