"""Replay a file of DynamoDB change records to a Firehose HTTP endpoint, exactly as Firehose would.

Only sends HTTP (pools.firehose_replay): no database access, so it can run from any machine with a
checkout, against any Shoal (or other Firehose-compatible) endpoint.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import BinaryIO

from django.core.management.base import BaseCommand, CommandError, OutputWrapper

from pools.firehose_client import DEFAULT_RETRY_SECONDS, RESPONSE_TIMEOUT_S
from pools.firehose_replay import ReplaySummary, replay

_MiB = 1 << 20


def _plain(text: str) -> str:
    return text


class Command(BaseCommand):
    help = (
        "Send a JSONL file of DynamoDB change records (one per line, FILE or - for stdin) to a "
        "Firehose HTTP endpoint, batched, encoded and retried as Amazon Data Firehose does."
    )
    requires_system_checks: list[str] = []  # it only sends HTTP; the local setup is irrelevant

    def add_arguments(self, parser):
        parser.add_argument("file", help="JSONL file, one change record per line; - reads stdin.")
        parser.add_argument("--endpoint", required=True, help="The Data Pool's HTTP endpoint URL.")
        parser.add_argument("--access-key", required=True, help="Sent as X-Amz-Firehose-Access-Key.")
        parser.add_argument(
            "--buffer-mib", type=float, default=1.0, help="Firehose buffer size in MiB (default 1)."
        )
        parser.add_argument("--gzip", action="store_true", help="Content encoding GZIP.")
        parser.add_argument(
            "--concurrency", type=int, default=1, help="Deliveries in flight at once (default 1)."
        )
        parser.add_argument(
            "--retry-seconds",
            type=float,
            default=DEFAULT_RETRY_SECONDS,
            help="Firehose retry duration (default 7200); 0 sends each batch once.",
        )
        parser.add_argument(
            "--timeout", type=float, default=RESPONSE_TIMEOUT_S, help="Seconds to wait for each answer."
        )
        parser.add_argument("--json", action="store_true", help="Print the summary as JSON on stdout.")

    def handle(self, *args, **opts):
        if not 0 < opts["buffer_mib"] <= 64:
            raise CommandError("--buffer-mib must be more than 0 and at most 64 (Firehose's limits)")
        if opts["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1")
        path = opts["file"]
        total = None if path == "-" else _count_records(path)
        source = sys.stdin.buffer if path == "-" else _open(path)
        reader = _RecordReader(source)
        bar = _Progress(self.stderr, total)
        try:
            summary = replay(
                reader,
                endpoint=opts["endpoint"],
                access_key=opts["access_key"],
                buffer_bytes=max(1, int(opts["buffer_mib"] * _MiB)),
                gzip_body=opts["gzip"],
                concurrency=opts["concurrency"],
                progress=bar,
                retry_seconds=opts["retry_seconds"],
                timeout=opts["timeout"],
            )
        except ValueError as exc:  # a bad endpoint URL
            raise CommandError(str(exc)) from None
        finally:
            bar.finish()
            if source is not sys.stdin.buffer:
                source.close()

        if reader.not_json:
            where = ", ".join(map(str, reader.not_json_lines))
            more = ", ..." if reader.not_json > len(reader.not_json_lines) else ""
            self.stderr.write(
                f"warning: {reader.not_json} line(s) are not JSON (lines {where}{more}); "
                "they were sent as they are, as Firehose would.",
                style_func=self.style.WARNING,
            )
        if opts["json"]:
            doc = summary.to_dict()
            doc["not_json_lines"] = reader.not_json
            self.stdout.write(json.dumps(doc))
        else:
            self.stdout.write(_render(summary))
        if summary.stopped:
            raise CommandError(
                f"stopped at once: the endpoint answered {summary.stopped} (a wrong URL, access key "
                f"or request is not retried); {summary.batches - summary.failed_batches} batches "
                "were delivered before."
            )
        if summary.failed_batches:
            failed = [r for r in summary.results if not r.ok]
            detail = "; ".join(f"{r.request_id}: HTTP {r.status or '-'} {r.error}" for r in failed[:3])
            raise CommandError(
                f"{summary.failed_batches} of {summary.batches} batches "
                f"({summary.failed_records} records) were not delivered. {detail}"
            )


def _open(path: str) -> BinaryIO:
    try:
        return open(path, "rb")  # noqa: SIM115 - closed by handle()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None


def _count_records(path: str) -> int:
    """Non-blank lines, for the progress bar's total (a cheap first pass over the file)."""
    with _open(path) as f:
        return sum(1 for line in f if not line.isspace())


class _RecordReader:
    """Yields each non-blank line without its line ending, counting lines that are not JSON."""

    def __init__(self, source: BinaryIO):
        self.source = source
        self.not_json = 0
        self.not_json_lines: list[int] = []

    def __iter__(self) -> Iterator[bytes]:
        loads = json.loads
        for number, line in enumerate(self.source, start=1):
            record = line.rstrip(b"\r\n")
            if not record or record.isspace():
                continue
            try:
                loads(record)
            except ValueError:
                self.not_json += 1
                if len(self.not_json_lines) < 5:
                    self.not_json_lines.append(number)
            yield record


class _Progress:
    """A redrawn bar on a terminal; otherwise a plain line every few seconds (logs, CI)."""

    def __init__(self, out: OutputWrapper, total: int | None):
        self.out = out
        self.total = total
        self.tty = out.isatty()
        self.started = time.monotonic()
        self.shown = 0.0
        self.shown_records = 0
        self.records = 0
        self.bytes = 0

    def __call__(self, records: int, raw_bytes: int) -> None:
        self.records, self.bytes = records, raw_bytes
        now = time.monotonic()
        if now - self.shown >= (0.1 if self.tty else 5.0):
            self.shown = now
            self._show()

    def finish(self) -> None:
        if self.records != self.shown_records:
            self._show()
        if self.records and self.tty:
            self.out.write("", style_func=_plain)  # leave the bar on its own line

    def _show(self) -> None:
        self.shown_records = self.records
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = f"{self.records / elapsed:,.0f} rec/s, {self.bytes / _MiB / elapsed:.1f} MiB/s"
        if self.total:
            share = min(self.records / self.total, 1.0)
            done = f"{self.records:,}/{self.total:,} records ({share:.0%})"
        else:
            share, done = None, f"{self.records:,} records"
        if not self.tty:
            self.out.write(f"sent {done}, {rate}", style_func=_plain)
            return
        bar = ""
        if share is not None:
            filled = int(share * 30)
            bar = "[" + "#" * filled + "." * (30 - filled) + "] "
        self.out.write(f"\r{bar}{done} {rate}\x1b[K", style_func=_plain, ending="")


def _render(s: ReplaySummary) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    return "\n".join(
        [
            f"batches:      {s.batches:,}",
            f"records:      {s.records:,}",
            f"raw data:     {s.raw_bytes / _MiB:.2f} MiB",
            f"elapsed:      {s.elapsed_s:.2f} s",
            f"throughput:   {s.records_per_s:,.0f} records/s, {s.mib_per_s:.2f} MiB/s",
            f"ack latency:  p50 {ms(s.ack_p50_ms)} ms, p99 {ms(s.ack_p99_ms)} ms",
            f"failed:       {s.failed_batches:,} batches ({s.failed_records:,} records)",
        ]
    )
