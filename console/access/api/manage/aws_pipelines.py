"""AWS pipelines: their status, retry and tear-down (admin keys), as the console's pipeline page
does them (pools.aws.pipelines)."""

from __future__ import annotations

from datetime import datetime

from django.shortcuts import get_object_or_404
from ninja import Field, Router, Schema, Status

from console import roles
from console.access.api.manage.api import ERRORS, Refused, require
from pools.aws import errors as aws_errors
from pools.aws import pipelines
from pools.aws.models import Pipeline

router = Router()


class StepOut(Schema):
    phase: str
    key: str
    title: str
    state: str
    detail: str
    error: str
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None


class PipelineOut(Schema):
    id: int
    pool: str
    status: str
    phase: str
    delivery_mode: str
    pull_start: str
    pull_start_at: datetime | None
    table_name: str
    stream_name: str
    firehose_name: str
    bucket_name: str
    connection: str
    region: str
    steps: list[StepOut]


def _pipeline_out(pipeline) -> dict:
    return {
        "id": pipeline.pk,
        "pool": pipeline.pool.name,
        "status": pipeline.status,
        "phase": pipeline.phase,
        "delivery_mode": pipeline.delivery_mode,
        "pull_start": pipeline.pull_start,
        "pull_start_at": pipeline.pull_start_at,
        "table_name": pipeline.table_name,
        "stream_name": pipeline.stream_name,
        "firehose_name": pipeline.firehose_name,
        "bucket_name": pipeline.bucket_name,
        "connection": pipeline.connection.name,
        "region": pipeline.region,
        "steps": [
            {
                "phase": step.phase,
                "key": step.key,
                "title": step.title,
                "state": step.state,
                "detail": step.detail,
                "error": step.error,
                "attempts": step.attempts,
                "started_at": step.started_at,
                "finished_at": step.finished_at,
            }
            for step in pipelines.phase_steps(pipeline)
        ],
    }


def _get_pipeline(pk: int):
    return get_object_or_404(Pipeline.objects.select_related("pool", "connection"), pk=pk)


@router.get("/pipelines", response={200: list[PipelineOut], **ERRORS}, tags=["AWS pipelines"])
def list_pipelines(request):
    return [_pipeline_out(p) for p in Pipeline.objects.select_related("pool", "connection").order_by("pk")]


@router.get("/pipelines/{pk}", response={200: PipelineOut, **ERRORS}, tags=["AWS pipelines"])
def get_pipeline(request, pk: int):
    """A pipeline and the state of each step of its current phase (provision or teardown)."""
    return _pipeline_out(_get_pipeline(pk))


def _resume(pipeline, phase: str) -> dict:
    try:
        pipelines.resume(pipeline, phase)
    except aws_errors.AwsError as exc:
        raise Refused(409, str(exc)) from None
    return _pipeline_out(_get_pipeline(pipeline.pk))


@router.post("/pipelines/{pk}/retry", response={202: PipelineOut, **ERRORS}, tags=["AWS pipelines"])
def retry_pipeline(request, pk: int):
    """Resume the current phase from its first unfinished step (admin keys); nothing is created twice."""
    require(request, roles.ADMIN)
    pipeline = _get_pipeline(pk)
    return Status(202, _resume(pipeline, pipeline.phase))


class TeardownIn(Schema):
    keep_bucket: bool = Field(False, description="Keep the S3 bucket of failed deliveries.")


@router.post("/pipelines/{pk}/teardown", response={202: PipelineOut, **ERRORS}, tags=["AWS pipelines"])
def teardown_pipeline(request, pk: int, body: TeardownIn):
    """Remove what Shoal created for this pipeline (admin keys), as the console's Tear down does."""
    require(request, roles.ADMIN)
    pipeline = _get_pipeline(pk)
    Pipeline.objects.filter(pk=pk).update(keep_bucket=body.keep_bucket)
    return Status(202, _resume(pipeline, "teardown"))
