from django.urls import path

from pools import ingest, views

app_name = "pools"

urlpatterns = [
    path("ingest/firehose/<str:public_id>", ingest.firehose_endpoint, name="ingest"),
    path("pools/", views.pool_list, name="list"),
    path("pools/<str:name>/", views.pool_detail, name="detail"),
    path("pools/<str:name>/preview/", views.preview, name="preview"),
    path("pools/<str:name>/preview/<str:task_id>/", views.preview_result, name="preview_result"),
    path("pools/<str:name>/rotate-key/", views.rotate_key, name="rotate_key"),
]
