"""AWS connections and pipelines, mounted at /aws/."""

from django.urls import path

from pools.aws.views import connections, pipeline, snapshot, wizard

app_name = "aws"

urlpatterns = [
    path("", connections.connections, name="connections"),
    path("connections/new/", connections.connection_form, name="connection_new"),
    path("connections/<int:pk>/", connections.connection_form, name="connection"),
    path("connections/<int:pk>/test/", connections.connection_test, name="connection_test"),
    path("connections/<int:pk>/delete/", connections.connection_delete, name="connection_delete"),
    # The "Connect DynamoDB" wizard of a pool: one URL per step.
    path("pools/<str:name>/connect/", wizard.connect_wizard, name="connect"),
    path("pools/<str:name>/connect/<str:step>/", wizard.connect_wizard, name="connect_step"),
    path("pipelines/<int:pk>/", pipeline.pipeline_detail, name="pipeline"),
    path("pipelines/<int:pk>/progress/", pipeline.pipeline_progress, name="pipeline_progress"),
    path("pipelines/<int:pk>/retry/", pipeline.pipeline_retry, name="pipeline_retry"),
    path("pipelines/<int:pk>/status/", pipeline.pipeline_status, name="pipeline_status"),
    path("pipelines/<int:pk>/check/", pipeline.pipeline_check, name="pipeline_check"),
    path("pipelines/<int:pk>/replay/", pipeline.pipeline_replay, name="pipeline_replay"),
    path("pipelines/<int:pk>/push-endpoint/", pipeline.pipeline_push_endpoint, name="pipeline_push"),
    path("pipelines/<int:pk>/teardown/", pipeline.pipeline_teardown, name="pipeline_teardown"),
    path("pipelines/<int:pk>/sample-order/", pipeline.pipeline_sample_order, name="pipeline_sample_order"),
    path("pipelines/<int:pk>/snapshot/", snapshot.snapshot_progress, name="snapshot"),
    path("pipelines/<int:pk>/snapshot/start/", snapshot.snapshot_start, name="snapshot_start"),
    path("pipelines/<int:pk>/snapshot/resume/", snapshot.snapshot_resume, name="snapshot_resume"),
    path("pipelines/<int:pk>/snapshot/pause/", snapshot.snapshot_pause, name="snapshot_pause"),
    path("pipelines/<int:pk>/snapshot/cancel/", snapshot.snapshot_cancel, name="snapshot_cancel"),
]
