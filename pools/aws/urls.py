"""AWS connections and pipelines, mounted at /aws/."""

from django.urls import path

from pools.aws import views

app_name = "aws"

urlpatterns = [
    path("", views.connections, name="connections"),
    path("connections/new/", views.connection_form, name="connection_new"),
    path("connections/<int:pk>/", views.connection_form, name="connection"),
    path("connections/<int:pk>/test/", views.connection_test, name="connection_test"),
    path("connections/<int:pk>/delete/", views.connection_delete, name="connection_delete"),
    # The "Connect DynamoDB" wizard of a pool: one URL per step.
    path("pools/<str:name>/connect/", views.connect_wizard, name="connect"),
    path("pools/<str:name>/connect/<str:step>/", views.connect_wizard, name="connect_step"),
    path("pipelines/<int:pk>/", views.pipeline_detail, name="pipeline"),
    path("pipelines/<int:pk>/progress/", views.pipeline_progress, name="pipeline_progress"),
    path("pipelines/<int:pk>/retry/", views.pipeline_retry, name="pipeline_retry"),
    path("pipelines/<int:pk>/status/", views.pipeline_status, name="pipeline_status"),
    path("pipelines/<int:pk>/check/", views.pipeline_check, name="pipeline_check"),
    path("pipelines/<int:pk>/replay/", views.pipeline_replay, name="pipeline_replay"),
    path("pipelines/<int:pk>/push-endpoint/", views.pipeline_push_endpoint, name="pipeline_push"),
    path("pipelines/<int:pk>/teardown/", views.pipeline_teardown, name="pipeline_teardown"),
    path("pipelines/<int:pk>/sample-order/", views.pipeline_sample_order, name="pipeline_sample_order"),
    path("pipelines/<int:pk>/snapshot/", views.snapshot_progress, name="snapshot"),
    path("pipelines/<int:pk>/snapshot/start/", views.snapshot_start, name="snapshot_start"),
    path("pipelines/<int:pk>/snapshot/resume/", views.snapshot_resume, name="snapshot_resume"),
    path("pipelines/<int:pk>/snapshot/pause/", views.snapshot_pause, name="snapshot_pause"),
]
