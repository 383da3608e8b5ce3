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
    results: list[SendResult] = []
    done = {"records": 0, "bytes": 0}
    stopped: list[str] = []

    def collect(futures: Iterable[Future[SendResult]]) -> None:
        for future in futures:
            result = future.result()
            results.append(result)
            if result.status in STOP_STATUSES and not stopped:
                stopped.append(f"HTTP {result.status}: {result.error}")
                sender.abort()  # batches waiting to retry give up at once
            done["records"] += result.records
            done["bytes"] += result.raw_bytes
            if progress is not None:
                progress(done["records"], done["bytes"])

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
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="firehose")
    try:
        pending: set[Future[SendResult]] = set()
        for batch in batches(lines, buffer_bytes):
            if len(pending) >= 2 * concurrency:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                collect(finished)
            if stopped:
                break
            pending.add(pool.submit(sender.send, batch))
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            collect(finished)
    except BaseException:
        # Ctrl-C or a failing progress callback: do not sit out hours of retries on the way out.
        sender.abort()
        pool.shutdown(cancel_futures=True)
        raise
    finally:
        pool.shutdown()
        sender.close()
    elapsed = time.monotonic() - started

    delivered = [r for r in results if r.ok]
    delivered_records = sum(r.records for r in delivered)
    delivered_bytes = sum(r.raw_bytes for r in delivered)
    latencies = [r.latency_s * 1000 for r in delivered if r.latency_s is not None]
    return ReplaySummary(
        batches=len(results),
        records=done["records"],
        raw_bytes=done["bytes"],
        failed_batches=len(results) - len(delivered),
        failed_records=done["records"] - delivered_records,
        elapsed_s=elapsed,
        records_per_s=delivered_records / elapsed if elapsed > 0 else 0.0,
        mib_per_s=delivered_bytes / _MiB / elapsed if elapsed > 0 else 0.0,
        ack_p50_ms=percentile(latencies, 50),
        ack_p99_ms=percentile(latencies, 99),
        started_at=started_at,
        results=results,
        stopped=stopped[0] if stopped else "",
    )
