"""Celery tasks of AWS pipelines, on the `default` queue (CELERY_TASK_ROUTES: pools.aws.tasks.*).

None is named warehouse_*: they never open the warehouse. Tasks take ids, and each is safe to run
twice: a step that is already done returns at once, and every step looks before it creates.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

from celery import chain
from celery.exceptions import Ignore
from django.utils import timezone

from console.celery import shared_task
from pools.aws import errors, monitoring, runner
from pools.aws import snapshot as snapshots
from pools.aws.clients import connect
from pools.aws.models import Pipeline, PipelineStep, Snapshot
from pools.aws.provisioning.firehose import ensure_firehose

log = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True)
def run_step(self, pipeline_id: int, phase: str, key: str) -> str:
    """One link of the chain. A failed (or concurrently held) step stops the chain: the rest stay
    pending until "Retry" resumes from the failed step."""
    state = runner.execute_step(pipeline_id, phase, key, task_id=self.request.id or "")
    if state not in (PipelineStep.State.DONE, PipelineStep.State.SKIPPED):
        raise Ignore()
    return state


@shared_task
def finish_phase(pipeline_id: int, phase: str) -> str:
    return runner.finish(pipeline_id, phase)


def phase_chain(pipeline_id: int, phase: str, keys: list[str]) -> chain:
    """The chain that runs a phase's steps `keys` in order, then finishes the phase."""
    links = [run_step.si(pipeline_id, phase, key) for key in keys]
    return chain(*links, finish_phase.si(pipeline_id, phase))


@shared_task
def check_pipeline(pipeline_id: int) -> dict:
    """Refresh the live status of a pipeline's resources and its failed deliveries."""
    pipeline = Pipeline.objects.select_related("connection", "pool").get(pk=pipeline_id)
    try:
        status = monitoring.check(pipeline, connect(pipeline.connection))
    except Exception as exc:  # bad credentials, no network…: shown on the page instead of a status
        status = {"error": str(errors.describe(exc)), "checked_at": timezone.now().isoformat()}
    Pipeline.objects.filter(pk=pipeline_id).update(resource_status=status, checked_at=timezone.now())
    return status


@shared_task(acks_late=True)
def replay_failed_deliveries(pipeline_id: int) -> dict:
    pipeline = Pipeline.objects.select_related("connection", "pool").get(pk=pipeline_id)
    try:
        outcome = asdict(monitoring.replay_failed(pipeline, connect(pipeline.connection)))
    except Exception as exc:
        outcome = {"errors": [str(errors.describe(exc))]}
    outcome["finished_at"] = timezone.now().isoformat()
    Pipeline.objects.filter(pk=pipeline_id).update(last_replay=outcome)
    check_pipeline.enqueue(pipeline_id)
    return outcome


@shared_task
def push_firehose_endpoint(pipeline_id: int) -> str:
    """Send the pool's current endpoint URL and access key to the Firehose stream (after a key
    rotation, or when PUBLIC_BASE_URL changed)."""
    pipeline = Pipeline.objects.select_related("connection", "pool").get(pk=pipeline_id)
    pipeline.endpoint_url = pipeline.pool.endpoint_url()
    pipeline.save(update_fields=["endpoint_url", "updated_at"])
    try:
        detail = ensure_firehose(pipeline, connect(pipeline.connection), push_endpoint=True)
    except Exception as exc:
        detail = f"Updating the Firehose stream failed: {errors.describe(exc)}"
    Pipeline.objects.filter(pk=pipeline_id).update(notice=detail, notice_at=timezone.now())
    log.info("pipeline %s: %s", pipeline_id, detail)
    return detail


@shared_task(bind=True, acks_late=True, max_retries=20)
def run_snapshot(self, snapshot_id: int) -> str:
    """Run or resume a "Backfill existing items" snapshot (pools/aws/snapshot.py).

    Safe to run twice: the snapshot is claimed with a conditional UPDATE, and a copy of this task
    (a redelivery) that finds it running with a fresh heartbeat looks again a little later, in
    case that runner dies; once a heartbeat is STALE_AFTER old, the snapshot is taken over from
    its last saved page."""
    result = snapshots.run_snapshot(snapshot_id, task_id=self.request.id or "")
    if result.status == Snapshot.Status.RUNNING and result.task_id != (self.request.id or ""):
        raise self.retry(countdown=snapshots.STALE_AFTER.total_seconds() + 5)
    return result.status


@shared_task
def sweep_aws() -> dict:
    """Periodic (beat): resume snapshots whose worker stopped, and refresh active pipelines' status
    (what the pipeline page shows without anyone having to press "Check now")."""
    stale = Snapshot.objects.filter(
        status=Snapshot.Status.RUNNING, heartbeat_at__lt=timezone.now() - snapshots.STALE_AFTER
    ).values_list("pk", flat=True)
    for snapshot_id in stale:
        run_snapshot.enqueue(snapshot_id)
    active = Pipeline.objects.filter(status=Pipeline.Status.ACTIVE).values_list("pk", flat=True)
    for pipeline_id in active:
        check_pipeline.enqueue(pipeline_id)
    return {"snapshots": len(stale), "pipelines": len(active)}
