"""The steps of a pipeline: which resources, in what order, under what titles, and the functions
that ensure, describe and remove each. Adding a resource is one module and one `Step` here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pools import sources
from pools.aws.clients import Aws
from pools.aws.models import Pipeline, PipelineStep
from pools.aws.provisioning import bucket, destination, firehose, role, stream, table_stream
from pools.aws.provisioning.base import Timing
from pools.sources import SourceType

Phase = PipelineStep.Phase
StepFunction = Callable[[Pipeline, Aws, Timing], str]


@dataclass(frozen=True)
class Step:
    key: str
    title: str  # as the pipeline page lists it while provisioning
    teardown_title: str
    ensure: StepFunction
    describe: Callable[[Pipeline, Aws], dict | None]
    remove: StepFunction


STEPS = {
    step.key: step
    for step in (
        Step(
            "stream",
            "Kinesis data stream active",
            "Delete the Kinesis data stream",
            stream.ensure_stream,
            stream.describe,
            stream.remove_stream,
        ),
        Step(
            "bucket",
            "S3 bucket for failed deliveries",
            "Delete the S3 bucket",
            bucket.ensure_bucket,
            bucket.describe,
            bucket.remove_bucket,
        ),
        Step(
            "role",
            "IAM role for Firehose (least-privilege policy)",
            "Delete the IAM role",
            role.ensure_role,
            role.describe,
            role.remove_role,
        ),
        Step(
            "firehose",
            "Firehose stream active (Kinesis → Shoal endpoint)",
            "Delete the Firehose stream and its log group",
            firehose.ensure_firehose,
            firehose.describe,
            firehose.remove_firehose,
        ),
        Step(
            "destination",
            "DynamoDB table streaming to Kinesis",
            "Stop the table's streaming to Kinesis",
            destination.ensure_destination,
            destination.describe,
            destination.remove_destination,
        ),
        Step(
            "table_stream",
            "DynamoDB stream on (new and old images)",
            "Turn off the table's DynamoDB stream",
            table_stream.ensure_table_stream,
            table_stream.describe,
            table_stream.remove_table_stream,
        ),
    )
}

# Provisioning runs the steps a pipeline's source type lists (SourceType.aws_steps), in its order:
# for DynamoDB, the table starts streaming only once Firehose is ACTIVE, since Firehose reads
# Kinesis from LATEST and a change streamed before would be lost. Teardown stops the delivery
# first, then the table's streaming, then removes what they used: this order, of the same steps.
TEARDOWN_ORDER = ("firehose", "destination", "table_stream", "stream", "role", "bucket")

# The pulls (pools/pull/) need only what Shoal's reader reads: the table's Kinesis streaming
# destination (the guide's Step 1), or the table's own DynamoDB stream. The reader starts at the
# stream's oldest record, so a change made once streaming is on is read whenever the reader runs.
MODE_STEPS: dict[str, tuple[str, ...]] = {
    Pipeline.Mode.KINESIS: ("stream", "destination"),
    Pipeline.Mode.STREAMS: ("table_stream",),
}


def keys(phase: str, source: SourceType | None = None, mode: str = Pipeline.Mode.FIREHOSE) -> tuple[str, ...]:
    """The steps of a phase for a pipeline from `source` (the default source type when not given)
    delivered by `mode`, in the order they run."""
    provision = MODE_STEPS.get(mode) or (source or sources.get(sources.DEFAULT)).aws_steps
    if phase == Phase.TEARDOWN:
        return tuple(key for key in TEARDOWN_ORDER if key in provision)
    return provision


def pipeline_keys(pipeline: Pipeline, phase: str) -> tuple[str, ...]:
    """The steps of a phase for this pipeline, from its pool's source type and its delivery mode,
    in the order they run."""
    return keys(phase, sources.of_pool(pipeline.pool), pipeline.delivery_mode)


def title(phase: str, key: str) -> str:
    step = STEPS.get(key)
    if step is None:
        return key
    return step.teardown_title if phase == Phase.TEARDOWN else step.title


def function(phase: str, key: str) -> StepFunction:
    """What running the step `key` of `phase` calls: the resource's ensure, or its remove."""
    step = STEPS[key]
    return step.remove if phase == Phase.TEARDOWN else step.ensure
