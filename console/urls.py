from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from console.access import views
from console.access.api import clickhouse_http
from console.access.api.urls import console_patterns as api_key_pages
from console.access.api.urls import management_patterns

urlpatterns = [
    # The console for a browser; ClickHouse's HTTP interface for a ClickHouse client (console/access/api).
    path("", clickhouse_http.root, name="root"),
    path("setup/<str:token>/", views.first_admin, name="setup"),
    path("login/", login_not_required(auth_views.LoginView.as_view()), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    # Browsers ask for /favicon.ico on pages without an icon link (the admin's): our SVG icon.
    path(
        "favicon.ico",
        login_not_required(RedirectView.as_view(url=static("shoal/favicon.svg"), permanent=True)),
    ),
    path("admin/", admin.site.urls),
    path("", include("pools.urls")),
    path("aws/", include("pools.aws.urls")),
    path("views/", include("views_mv.urls")),
    path("sql/", include("console.access.sql_urls")),
    path("api-keys/", include(api_key_pages)),
    path("", include("console.access.api.urls")),
    *management_patterns,
]

# Forbidden pages in the console's layout, saying which role is needed and who grants it.
handler403 = views.forbidden
