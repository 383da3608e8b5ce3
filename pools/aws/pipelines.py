"""Pipelines: creating one, starting (or resuming) a phase, and running one step with its state kept.

The Celery chain in tasks.py runs `execute_step` once per step; tests call it directly (with clients
of their own). A step is claimed with a conditional UPDATE, so two workers never run it at once,
and a redelivered task (same task id, after a worker died) may take its own step back.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from pools.aws import errors, provisioning
from pools.aws.clients import Aws, connect
from pools.aws.models import PROVISION_STEPS, TEARDOWN_STEPS, AwsConnection, Pipeline, PipelineStep

log = logging.getLogger(__name__)

Phase = PipelineStep.Phase
State = PipelineStep.State
STEPS = {Phase.PROVISION: PROVISION_STEPS, Phase.TEARDOWN: TEARDOWN_STEPS}
BUSY = "busy"


def create_pipeline(pool, connection: AwsConnection, *, user=None, start: bool = True, **fields) -> Pipeline:
    """Record a new pipeline with its provisioning steps and (after commit) start the chain."""
    with transaction.atomic():
        pipeline = Pipeline.objects.create(
            pool=pool, connection=connection, created_by=user, status=Pipeline.Status.PROVISIONING, **fields
        )
        _ensure_steps(pipeline, Phase.PROVISION)
        if start:
            keys = list(PROVISION_STEPS)
            transaction.on_commit(lambda: _enqueue(pipeline.pk, Phase.PROVISION, keys))
    return pipeline


def _ensure_steps(pipeline: Pipeline, phase: str) -> None:
    for position, key in enumerate(STEPS[phase]):
        PipelineStep.objects.get_or_create(
            pipeline=pipeline, phase=phase, key=key, defaults={"position": position}
        )


def _enqueue(pipeline_id: int, phase: str, keys: list[str]) -> None:
    from pools.aws.tasks import enqueue_chain

    try:
        enqueue_chain(pipeline_id, phase, keys)
    except Exception as exc:  # no broker: the steps stay pending and the page offers "Retry"
        log.warning("could not enqueue %s of pipeline %s: %s", phase, pipeline_id, exc)
        PipelineStep.objects.filter(pipeline_id=pipeline_id, phase=phase, key=keys[0]).update(
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
            transaction.on_commit(lambda: _enqueue(pipeline.pk, phase, keys))
        elif not keys:
            transaction.on_commit(lambda: finish(pipeline.pk, phase))
    return keys


def execute_step(
    pipeline_id: int,
    phase: str,
    key: str,
    *,
    aws: Aws | None = None,
    timing: provisioning.Timing | None = None,
    task_id: str = "",
) -> str:
    """Run one step and keep its outcome; returns its state (or BUSY if another run holds it)."""
    claimable = Q(state__in=[State.PENDING, State.FAILED])
    if task_id:
        claimable |= Q(state=State.RUNNING, task_id=task_id)
    claimed = (
        PipelineStep.objects.filter(pipeline_id=pipeline_id, phase=phase, key=key)
        .filter(claimable)
        .update(
            state=State.RUNNING,
            task_id=task_id,
            started_at=timezone.now(),
            finished_at=None,
            error="",
            attempts=F("attempts") + 1,
        )
    )
    step = PipelineStep.objects.get(pipeline_id=pipeline_id, phase=phase, key=key)
    if not claimed:
        return step.state if step.finished else BUSY
    pipeline = Pipeline.objects.select_related("pool", "connection").get(pk=pipeline_id)
    try:
        aws = aws or connect(pipeline.connection)
        detail = provisioning.FUNCTIONS[phase][key](pipeline, aws, timing or provisioning.DEFAULT_TIMING)
        state = State.DONE
    except provisioning.StepSkipped as exc:
        detail, state = str(exc), State.SKIPPED
    except Exception as exc:  # every failure is kept with AWS's words, and the chain stops
        error = errors.describe(exc)
        log.warning("pipeline %s %s/%s failed: %s", pipeline_id, phase, key, error)
        PipelineStep.objects.filter(pk=step.pk).update(
            state=State.FAILED, error=str(error), finished_at=timezone.now()
        )
        failed = Pipeline.Status.FAILED if phase == Phase.PROVISION else Pipeline.Status.TEARDOWN_FAILED
        Pipeline.objects.filter(pk=pipeline_id).update(status=failed, updated_at=timezone.now())
        return State.FAILED
    PipelineStep.objects.filter(pk=step.pk).update(state=state, detail=detail, finished_at=timezone.now())
    return state


def finish(pipeline_id: int, phase: str) -> str:
    """After the last step: the pipeline is active (or removed) when every step finished."""
    steps = PipelineStep.objects.filter(pipeline_id=pipeline_id, phase=phase)
    if steps.exclude(state__in=[State.DONE, State.SKIPPED]).exists():
        return Pipeline.objects.get(pk=pipeline_id).status
    status = Pipeline.Status.ACTIVE if phase == Phase.PROVISION else Pipeline.Status.REMOVED
    Pipeline.objects.filter(pk=pipeline_id).update(status=status, updated_at=timezone.now())
    return status


def run_inline(
    pipeline: Pipeline, phase: str, *, aws: Aws | None = None, timing: provisioning.Timing | None = None
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
