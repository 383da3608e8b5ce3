"""The HTTP API under /api/v1/…: Data Pools, deliveries and quarantine, Materialized Views,
the status, retry and tear-down of AWS pipelines (manage keys), and POST /api/v1/sql (any key,
carried out by console.access.api.sql_api).

django-ninja builds the OpenAPI 3 document (/api/v1/openapi.json) and the browsable docs
(/api/v1/docs, Swagger UI served from ninja's own static files, started by a script file rather
than inline code, so it works offline and under `script-src 'self'`) from these functions and
their pydantic schemas. One module per resource (data_pools, materialized_views, aws_pipelines,
sql), each a Router added here to the NinjaAPI of api.py (which also holds the authentication and
the errors). Each operation calls the services the console and the commands call (pools.services,
pools.quarantine, views_mv.services, pools.aws.pipelines), so validation messages are the same;
errors are RFC 9457 problem details. Authentication: a manage API key (Bearer), with the rights
of its role (editor or admin, console.roles).
"""

from __future__ import annotations

from console.access.api.manage import aws_pipelines, data_pools, materialized_views, sql
from console.access.api.manage.api import api

# In this order in the OpenAPI document.
for _resource in (data_pools, materialized_views, aws_pipelines, sql):
    api.add_router("", _resource.router)


def urls():
    """The API's URL patterns, marked for Shoal's middleware and its roles test: operations take
    a key (not a session: a manage key, any key for /sql), the document and the docs are public."""
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        callback = pattern.callback
        callback.login_required = False
        name = pattern.name or ""
        if name in ("openapi-json", "openapi-view", "api-root"):
            callback.shoal_api_scope = "public"
        else:
            callback.shoal_api_scope = "query" if name == "run_sql" else "manage"
    return patterns, app_name, namespace
