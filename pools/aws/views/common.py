"""What the pipeline page and its snapshot card share."""

from __future__ import annotations

from django.shortcuts import get_object_or_404

from pools.aws.models import Pipeline


def pipeline_or_404(pk: int) -> Pipeline:
    return get_object_or_404(Pipeline.objects.select_related("pool", "connection"), pk=pk)
