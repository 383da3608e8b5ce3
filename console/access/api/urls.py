"""The HTTP API's routes (key-authenticated) and the console's API keys page (admins)."""

from __future__ import annotations

from django.urls import path, re_path

from console.access.api import clickhouse_http, console_views, manage

app_name = "api"

urlpatterns = [
    re_path(r"^clickhouse/?$", clickhouse_http.interface, name="clickhouse"),
    path("clickhouse/ping", clickhouse_http.ping, name="clickhouse_ping"),
]

management_patterns = [path("api/v1/", manage.urls())]

console_patterns = (
    [
        path("", console_views.key_list, name="list"),
        path("new/", console_views.key_create, name="create"),
        path("<int:pk>/revoke/", console_views.key_revoke, name="revoke"),
    ],
    "api_keys",
)
