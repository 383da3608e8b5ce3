"""Materialized View pages: list, detail with backfill progress, actions (the create wizard is
views_mv/wizard.py)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from console import warehouse_client
from console.htmx import HtmxHttpRequest, region
from console.roles import EDITOR, VIEWER, requires
from pools import sources
from pools.aws.models import AwsConnection
from pools.models import DataPool
from views_mv import forms, services, tasks, wizard
from views_mv import transform as transform_sql
from views_mv.models import MaterializedView, ReplicaCheck


@requires(VIEWER)
def mv_list(request: HttpRequest) -> HttpResponse:
    views = MaterializedView.objects.select_related("source_pool", "target_pool", "backfill")
    return render(request, "views_mv/list.html", {"views": views})


PARTS = {"progress": "views_mv/_progress.html", "replica": "views_mv/_replica.html"}


@requires(VIEWER)
def mv_detail(request: HtmxHttpRequest, name: str) -> HttpResponse:
    mv = get_object_or_404(MaterializedView.objects.select_related("source_pool", "target_pool"), name=name)
    template = PARTS.get(region(request) or "")
    context = {
        "mv": mv,
        "backfill": getattr(mv, "backfill", None),
        "check": mv.replica_checks.first(),
        "pipelines": mv.source_pool.aws_pipelines.select_related("connection"),
        "connections": AwsConnection.objects.all(),
        "failures": mv.failures.filter(resolved_at__isnull=True).select_related("delivery")[:100],
        "failure_count": mv.failures.filter(resolved_at__isnull=True).count(),
    }
    return render(request, template or "views_mv/detail.html", context)


@requires(EDITOR)
@require_POST
def mv_retry_failures(request: HttpRequest, name: str) -> HttpResponse:
    mv = get_object_or_404(MaterializedView, name=name)
    if tasks.warehouse_retry_view_failures.enqueue(mv.pk):
        messages.success(request, "Running the view again over the rows it could not transform.")
    else:
        messages.error(request, "Could not queue the re-run: Redis is not reachable. Try again.")
    return redirect(mv)


@requires(EDITOR)
@require_POST
def mv_edit_sql(request: HttpRequest, name: str) -> HttpResponse:
    mv = get_object_or_404(MaterializedView.objects.select_related("source_pool", "target_pool"), name=name)
    form = forms.EditSqlForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError(list(form.errors["sql"]))
        services.replace_sql(mv, form.cleaned_data["sql"])
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Saved: the view runs with this SQL from the next delivery.")
    return redirect(mv)


@requires(EDITOR)
@require_POST
def mv_replica_check(request: HttpRequest, name: str) -> HttpResponse:
    """Start comparing the view's pool with the DynamoDB table it replicates."""
    mv = get_object_or_404(MaterializedView, name=name)
    form = forms.ReplicaCheckForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for e in form.non_field_errors()))
        return redirect(mv)
    check = ReplicaCheck.objects.create(
        mv=mv, connection=form.cleaned_data["connection"], table_name=form.cleaned_data["table"]
    )
    tasks.start_replica_check(check.pk)
    return redirect(mv)


@requires(EDITOR)
@require_POST
def mv_delete(request: HttpRequest, name: str) -> HttpResponse:
    mv = get_object_or_404(MaterializedView, name=name)
    form = forms.DeleteViewForm(request.POST)
    delete_target = form.is_valid() and form.cleaned_data["delete_target"]
    services.delete_mv(mv, delete_target=delete_target)
    kept = "" if delete_target else f" Its Data Pool {mv.target_pool.name} is kept."
    messages.success(request, f"Materialized View {mv.name} is being removed.{kept}")
    return redirect("views_mv:list")


@requires(EDITOR)
def transform(request: HtmxHttpRequest, pool: str) -> HttpResponse:
    """ "Transform into an entity pool": the guide's Step 4 for this pool's keys and attributes,
    tested, with the guide's answers; the wizard opens on its last step (one Create)."""
    source = get_object_or_404(DataPool, name=pool, kind__in=sources.kinds())
    try:
        found = warehouse_client.call(tasks.warehouse_seen_attributes, source.pk)
        if "error" in found:
            raise ValidationError(found["error"])
        if not found["keys"]:
            raise ValidationError(
                f"{source.name} has received no change yet: its table's keys are not known."
            )
        seen = transform_sql.Seen(
            keys=[tuple(k) for k in found["keys"]],
            time_keys=set(found["time_keys"]),
            attributes=[tuple(a) for a in found["attributes"]],
        )
        plan = services.inspect(transform_sql.step4_sql(source.name, seen), user=f"user:{request.user.pk}")
    except (ValidationError, warehouse_client.WarehouseUnavailable) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        return redirect(source)
    return redirect(wizard.prefill(request, plan, transform_sql.answers(seen)))


@requires(EDITOR)
@require_POST
def mv_rebuild(request: HttpRequest, name: str) -> HttpResponse:
    """Make the view's pool again with the types its query declares, and copy the source again."""
    mv = get_object_or_404(MaterializedView.objects.select_related("target_pool"), name=name)
    try:
        services.rebuild_mv(mv)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Rebuilding {mv.target_pool.name} with the query's types.")
    return redirect(mv)


@requires(EDITOR)
@require_POST
def mv_retry_backfill(request: HttpRequest, name: str) -> HttpResponse:
    mv = get_object_or_404(MaterializedView, name=name)
    if not tasks.warehouse_run_backfill.enqueue(mv.pk):
        messages.error(request, "Could not queue the backfill: Redis is not reachable. Try again.")
    return redirect(mv)
