"""Console pages of AWS connections: list, create or edit, test, delete.

A test runs here with the short timeouts of clients.py; whatever creates, deletes or waits runs in
the `default` worker.
"""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.db.models import Count, ProtectedError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from console.htmx import HtmxHttpRequest, is_partial
from console.roles import ADMIN, VIEWER, requires
from pools.aws import discovery, errors, forms
from pools.aws.models import AwsConnection, Pipeline


@requires(VIEWER)
def connections(request: HttpRequest) -> HttpResponse:
    context = {
        "connections": AwsConnection.objects.annotate(pipeline_count=Count("pipelines")),
        "pipelines": Pipeline.objects.select_related("pool", "connection").exclude(
            status=Pipeline.Status.REMOVED
        ),
    }
    return render(request, "aws/connections.html", context)


@requires(ADMIN)
def connection_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    connection = get_object_or_404(AwsConnection, pk=pk) if pk else AwsConnection()
    form = forms.ConnectionForm(request.POST or None, instance=connection)
    if request.method == "POST" and form.is_valid():
        connection = form.save()
        messages.success(request, f"Saved the AWS connection {connection.name}. Test it below.")
        return redirect(connection)
    return render(request, "aws/connection_form.html", {"form": form, "connection": connection})


@requires(ADMIN)
@require_POST
def connection_test(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(AwsConnection, pk=pk)
    context: dict = {"connection": connection}
    try:
        context["identity"] = discovery.test_connection(connection)
    except errors.AwsError as exc:
        context["error"] = exc
    if is_partial(request):
        return render(request, "aws/_test_result.html", context)
    if "error" in context:
        messages.error(request, f"Test failed. {context['error']}")
    else:
        messages.success(request, f"Connected to account {context['identity'].account}.")
    return redirect(connection)


@requires(ADMIN)
@require_POST
def connection_delete(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(AwsConnection, pk=pk)
    try:
        with transaction.atomic():
            connection.pipelines.filter(status=Pipeline.Status.REMOVED).delete()  # history only
            connection.delete()
    except ProtectedError:
        messages.error(request, "Pipelines use this connection; tear them down first.")
        return redirect(connection)
    messages.success(request, f"Deleted the AWS connection {connection.name}.")
    return redirect("aws:connections")
