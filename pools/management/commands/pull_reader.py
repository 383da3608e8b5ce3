"""Read every pipeline that pulls (Kinesis or DynamoDB Streams) until stopped: `make run` starts
this as its "reader" process (console/supervisor.py)."""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand

from pools.pull.runner import Reader


class Command(BaseCommand):
    help = "Read the streams of the pipelines that pull (Kinesis pull, DynamoDB Streams pull) until stopped."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--idle-seconds", type=float, default=1.0, help="pause when nothing was read")

    def handle(self, *args, idle_seconds: float, **options) -> None:
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())  # finishes the page in hand, then stops
        self.stdout.write("pull reader ready", ending="\n")
        self.stdout.flush()
        Reader(idle_seconds=idle_seconds).run(stop)
        self.stdout.write("pull reader stopped")
