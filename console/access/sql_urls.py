from django.urls import path

from console.access import sql_views

app_name = "sql"

urlpatterns = [
    path("", sql_views.sql_console, name="console"),
    path("run/", sql_views.sql_run, name="run"),
    path("runs/<int:pk>/", sql_views.sql_result, name="result"),
]
