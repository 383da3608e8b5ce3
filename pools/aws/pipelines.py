"""Pipelines: creating one, starting (or resuming) a phase, and what the pipeline page shows of it.

A phase runs as a Celery chain (tasks.py) of one task per step (runner.py); `run_inline` runs it in
this process instead, for tests and commands.
"""

from __future__ import annotations

import functools

from django.db import transaction
from django.utils import timezone

from console import celery
from pools.aws import errors
from pools.aws.clients import Aws
from pools.aws.models import AwsConnection, Pipeline, PipelineStep
from pools.aws.provisioning import registry
from pools.aws.provisioning.base import Timing
from pools.aws.runner import execute_step, finish
from pools.aws.tasks import phase_chain

Phase = PipelineStep.Phase
State = PipelineStep.State


def create_pipeline(pool, connection: AwsConnection, *, user=None, start: bool = True, **fields) -> Pipeline:
    """Record a new pipeline with its provisioning steps and (after commit) start the chain.

    A pull that starts "from now" starts at this moment: the changes before it are the backfill's.
    """
    if fields.get("pull_start") == Pipeline.Start.NOW:
        fields["pull_start_at"] = timezone.now()
    with transaction.atomic():
        pipeline = Pipeline.objects.create(
            pool=pool, connection=connection, created_by=user, status=Pipeline.Status.PROVISIONING, **fields
        )
        _ensure_steps(pipeline, Phase.PROVISION)
        if start:
            keys = list(registry.pipeline_keys(pipeline, Phase.PROVISION))
            _enqueue_on_commit(pipeline.pk, Phase.PROVISION, keys)
    return pipeline


def _ensure_steps(pipeline: Pipeline, phase: str) -> None:
    for position, key in enumerate(registry.pipeline_keys(pipeline, phase)):
        PipelineStep.objects.get_or_create(
            pipeline=pipeline, phase=phase, key=key, defaults={"position": position}
        )


def _enqueue_on_commit(pipeline_id: int, phase: str, keys: list[str]) -> None:
    """Start the phase's chain once the transaction commits; without a broker, its first step
    fails with the broker's error (the steps stay pending and the page offers "Retry")."""
    celery.enqueue_on_commit(
        phase_chain(pipeline_id, phase, keys),
        refused=functools.partial(_not_queued, pipeline_id, phase, keys[0]),
    )


def _not_queued(pipeline_id: int, phase: str, first_key: str, exc: Exception) -> None:
    PipelineStep.objects.filter(pipeline_id=pipeline_id, phase=phase, key=first_key).update(
        state=State.FAILED, error=f"Could not queue the work (is Redis running?): {exc}"
    )
    status = Pipeline.Status.FAILED if phase == Phase.PROVISION else Pipeline.Status.TEARDOWN_FAILED
    Pipeline.objects.filter(pk=pipeline_id).update(status=status)


def resume(pipeline: Pipeline, phase: str, *, enqueue: bool = True) -> list[str]:
    """(Re)start a phase from its first unfinished step; returns the keys that will run.

    Starting teardown also works on a pipeline whose provisioning failed half-way.
    """
    with transaction.atomic():
        _ensure_steps(pipeline, phase)
        if pipeline.steps.filter(state=State.RUNNING).exists():
            raise errors.AwsError("config", "A step is still running; wait for it to finish.")
        steps = list(pipeline.steps.filter(phase=phase).order_by("position"))
        pending = [s for s in steps if not s.finished]
        keys = [s.key for s in pending]
        PipelineStep.objects.filter(pk__in=[s.pk for s in pending]).update(
            state=State.PENDING, error="", task_id=""
        )
        running = Pipeline.Status.PROVISIONING if phase == Phase.PROVISION else Pipeline.Status.TEARING_DOWN
        Pipeline.objects.filter(pk=pipeline.pk).update(status=running, updated_at=timezone.now())
        pipeline.status = running
        if keys and enqueue:
            _enqueue_on_commit(pipeline.pk, phase, keys)
        elif not keys:
            transaction.on_commit(lambda: finish(pipeline.pk, phase))
    return keys


def run_inline(
    pipeline: Pipeline, phase: str, *, aws: Aws | None = None, timing: Timing | None = None
) -> str:
    """Run a phase's unfinished steps in this process, in order, stopping at the first failure."""
    for key in resume(pipeline, phase, enqueue=False):
        state = execute_step(pipeline.pk, phase, key, aws=aws, timing=timing)
        if state not in (State.DONE, State.SKIPPED):
            pipeline.refresh_from_db()
            return pipeline.status
    return finish(pipeline.pk, phase)


def progress(steps: list[PipelineStep]) -> int:
    """Percent of steps finished."""
    if not steps:
        return 0
    return round(100 * sum(1 for s in steps if s.finished) / len(steps))


def phase_steps(pipeline: Pipeline) -> list[PipelineStep]:
    """The steps of the pipeline's current phase, in order, each with its `title` from the registry."""
    steps = pipeline.phase_steps()
    for step in steps:
        step.title = registry.title(step.phase, step.key)
    return steps
