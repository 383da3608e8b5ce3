"""Replaying many records to a Firehose HTTP endpoint: batched as Firehose's size buffer does,
`concurrency` deliveries in flight, each sent with Firehose's retry policy (pools/firehose_client.py),
and a summary of rates and acknowledgement latencies. Standard library only, like the sender.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field

from pools.firehose_client import (
    DEFAULT_RETRY_SECONDS,
    DEFAULT_SOURCE_ARN,
    INITIAL_BACKOFF_S,
    RESPONSE_TIMEOUT_S,
    STOP_STATUSES,
    FirehoseSender,
    SendResult,
    batches,
)

_MiB = 1 << 20


@dataclass
class ReplaySummary:
    """Totals of a replay; rates count delivered records only."""

    batches: int
    records: int
    raw_bytes: int
    failed_batches: int
    failed_records: int
    elapsed_s: float
    records_per_s: float
    mib_per_s: float
    ack_p50_ms: float | None
    ack_p99_ms: float | None
    started_at: float
    results: list[SendResult] = field(default_factory=list, repr=False)
    # Set when the replay stopped early on an answer in STOP_STATUSES: "HTTP 404: <errorMessage>".
    stopped: str = ""

    def to_dict(self, *, with_results: bool = False) -> dict:
        doc = asdict(self)
        if not with_results:
            del doc["results"]
        return doc


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (an observed value, not an interpolation)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


@dataclass
class _Tally:
    """What the replay has sent so far, collected in the calling thread."""

    sender: FirehoseSender
    progress: Callable[[int, int], None] | None
    results: list[SendResult] = field(default_factory=list)
    records: int = 0
    raw_bytes: int = 0
    stopped: str = ""

    def collect(self, futures: Iterable[Future[SendResult]]) -> None:
        for future in futures:
            result = future.result()
            self.results.append(result)
            if result.status in STOP_STATUSES and not self.stopped:
                self.stopped = f"HTTP {result.status}: {result.error}"
                self.sender.abort()  # batches waiting to retry give up at once
            self.records += result.records
            self.raw_bytes += result.raw_bytes
            if self.progress is not None:
                self.progress(self.records, self.raw_bytes)

    def summary(self, started_at: float, elapsed: float) -> ReplaySummary:
        delivered = [r for r in self.results if r.ok]
        delivered_records = sum(r.records for r in delivered)
        delivered_bytes = sum(r.raw_bytes for r in delivered)
        latencies = [r.latency_s * 1000 for r in delivered if r.latency_s is not None]
        return ReplaySummary(
            batches=len(self.results),
            records=self.records,
            raw_bytes=self.raw_bytes,
            failed_batches=len(self.results) - len(delivered),
            failed_records=self.records - delivered_records,
            elapsed_s=elapsed,
            records_per_s=delivered_records / elapsed if elapsed > 0 else 0.0,
            mib_per_s=delivered_bytes / _MiB / elapsed if elapsed > 0 else 0.0,
            ack_p50_ms=percentile(latencies, 50),
            ack_p99_ms=percentile(latencies, 99),
            started_at=started_at,
            results=self.results,
            stopped=self.stopped,
        )


def replay(
    lines: Iterable[bytes],
    *,
    endpoint: str,
    access_key: str,
    buffer_bytes: int,
    gzip_body: bool,
    concurrency: int,
    progress: Callable[[int, int], None] | None = None,
    retry_seconds: float = DEFAULT_RETRY_SECONDS,
    timeout: float = RESPONSE_TIMEOUT_S,
    initial_backoff: float = INITIAL_BACKOFF_S,
    source_arn: str = DEFAULT_SOURCE_ARN,
) -> ReplaySummary:
    """Send every record once (plus Firehose-style retries) with `concurrency` deliveries in flight.

    Records are read lazily and at most 2 x concurrency batches wait in memory. `progress` is
    called from the calling thread after each batch with the records and raw bytes done so far.
    Results are in completion order.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    started_at = time.time()
    started = time.monotonic()
    sender = FirehoseSender(
        endpoint,
        access_key,
        gzip_body=gzip_body,
        timeout=timeout,
        retry_seconds=retry_seconds,
        initial_backoff=initial_backoff,
        source_arn=source_arn,
    )
    tally = _Tally(sender, progress)
    try:
        _send_all(sender, batches(lines, buffer_bytes), concurrency, tally)
    finally:
        sender.close()
    return tally.summary(started_at, time.monotonic() - started)


def _send_all(sender: FirehoseSender, todo: Iterable[list[bytes]], concurrency: int, tally: _Tally) -> None:
    """Keep `concurrency` sends in flight and at most as many batches waiting, until all are
    answered or one answer stops the replay."""
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="firehose")
    try:
        pending: set[Future[SendResult]] = set()
        for batch in todo:
            if len(pending) >= 2 * concurrency:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                tally.collect(finished)
            if tally.stopped:
                break
            pending.add(pool.submit(sender.send, batch))
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            tally.collect(finished)
    except BaseException:
        # Ctrl-C or a failing progress callback: do not sit out hours of retries on the way out.
        sender.abort()
        pool.shutdown(cancel_futures=True)
        raise
    finally:
        pool.shutdown()
