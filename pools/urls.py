from django.urls import path

from pools import views, wizard
from pools.ingest import endpoint

app_name = "pools"

urlpatterns = [
    path("ingest/firehose/<str:public_id>", endpoint.firehose_endpoint, name="ingest"),
    path("pools/", views.pool_list, name="list"),
    # The Create Data Pool wizard (pools/wizard.py): one URL per step.
    path("pools/new/", wizard.start, name="create"),
    path("pools/new/<str:step>/", wizard.step, name="create_step"),
    path("pools/<str:name>/", views.pool_detail, name="detail"),
    path("pools/<str:name>/preview/", views.preview, name="preview"),
    path("pools/<str:name>/preview/<str:token>/", views.preview_result, name="preview_result"),
    path("pools/<str:name>/rotate-key/", views.rotate_key, name="rotate_key"),
    path("pools/<str:name>/test-events/", views.send_test_events, name="send_test_events"),
    path("pools/<str:name>/delete/", views.delete_pool, name="delete"),
]
