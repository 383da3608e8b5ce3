"""Running one step of a pipeline with its outcome kept, and closing a phase after its last step.

The Celery chain in tasks.py runs `execute_step` once per step; tests call it directly (with clients
of their own). A step is claimed with a conditional UPDATE, so two workers never run it at once,
and a redelivered task (same task id, after a worker died) may take its own step back.
"""

from __future__ import annotations

import logging

from django.db.models import F, Q
from django.utils import timezone

from pools.aws import errors
from pools.aws.clients import Aws, connect
from pools.aws.models import Pipeline, PipelineStep
from pools.aws.provisioning import registry
from pools.aws.provisioning.base import DEFAULT_TIMING, StepSkipped, Timing

log = logging.getLogger(__name__)

Phase = PipelineStep.Phase
State = PipelineStep.State
BUSY = "busy"


def execute_step(
    pipeline_id: int,
    phase: str,
    key: str,
    *,
    aws: Aws | None = None,
    timing: Timing | None = None,
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
        detail = registry.function(phase, key)(pipeline, aws, timing or DEFAULT_TIMING)
        state = State.DONE
    except StepSkipped as exc:
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
