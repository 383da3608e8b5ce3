"""What every provisioning step shares: how long it waits (Timing), how it waits (wait_until),
how it says there is nothing to do (StepSkipped), and how it records and recognises what Shoal
created (save_fields, tags)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pools.aws.errors import AwsError
from pools.aws.models import Pipeline


class StepSkipped(Exception):
    """Nothing to do for this step (not Shoal's resource, or not possible in the emulator)."""


@dataclass
class Timing:
    """How long steps wait and how often they look (short in tests; moto is instant)."""

    poll_seconds: float = 5.0
    stream_wait_seconds: float = 600.0
    firehose_poll_seconds: float = 10.0
    firehose_wait_seconds: float = 1200.0  # Terraform waits up to 20 minutes too
    firehose_delete_wait_seconds: float = 300.0
    destination_wait_seconds: float = 900.0
    iam_retry_seconds: float = 120.0
    sleep: Callable[[float], None] = field(default=time.sleep)


DEFAULT_TIMING = Timing()


def save_fields(pipeline: Pipeline, **fields) -> None:
    for name, value in fields.items():
        setattr(pipeline, name, value)
    pipeline.save(update_fields=[*fields, "updated_at"])


def is_tagged(tags, pipeline: Pipeline) -> bool:
    """True when the tags (a list of Key/Value dicts or a dict) carry this pipeline's id."""
    if isinstance(tags, dict):
        return tags.get("shoal:pipeline") == pipeline.uid
    return any(t.get("Key") == "shoal:pipeline" and t.get("Value") == pipeline.uid for t in tags or [])


def tag_list(pipeline: Pipeline) -> list[dict]:
    return [{"Key": k, "Value": v} for k, v in pipeline.tags().items()]


def wait_until(
    what: str, check: Callable[[], bool], *, timeout: float, interval: float, timing: Timing
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            raise AwsError("aws", f"Timed out after {timeout:.0f} s waiting for {what}.")
        timing.sleep(interval)


def parse_arn(arn: str) -> dict:
    """partition, service, region, account and resource of an ARN."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise AwsError("config", f"{arn!r} is not an ARN")
    return dict(zip(("arn", "partition", "service", "region", "account", "resource"), parts, strict=True))
