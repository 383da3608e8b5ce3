"""The AWS models moved from the `pools` app to their own (`aws`) without moving a row.

The database is taken back to before the move, rows are written through the models as they were
then, and the move is applied: the rows, the foreign key from another app, the content types (and
so the permissions given to a user) are all still there.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("aws", None), ("pools", "0010_load_batches"), ("views_mv", "0007_view_runs")]
AFTER = [
    ("aws", "0001_initial"),
    ("views_mv", "0008_replicacheck_connection_in_aws_app"),
    ("pools", "0011_aws_models_to_aws_app"),
]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    ContentType.objects.clear_cache()
    return MigrationExecutor(connection).loader.project_state([t for t in targets if t[1]]).apps


def _seed(old) -> None:
    pool = old.get_model("pools", "DataPool").objects.create(name="orders_cdc")
    target = old.get_model("pools", "DataPool").objects.create(name="orders")
    conn = old.get_model("pools", "AwsConnection").objects.create(name="sandbox")
    pipeline = old.get_model("pools", "Pipeline").objects.create(
        pool=pool,
        connection=conn,
        table_name="orders",
        stream_name="orders-cdc",
        bucket_name="b",
        role_name="r",
        firehose_name="f",
        http_endpoint_name="h",
        endpoint_url="https://example.com/",
        relay_checkpoint={"shard-1": "42"},
    )
    old.get_model("pools", "PipelineStep").objects.create(
        pipeline=pipeline, phase="provision", key="stream", position=0
    )
    old.get_model("pools", "Snapshot").objects.create(pipeline=pipeline, table_name="orders", items_done=7)
    mv = old.get_model("views_mv", "MaterializedView").objects.create(
        name="orders_mv", sql="SELECT 1", user_sql="SELECT 1", source_pool=pool, target_pool=target
    )
    old.get_model("views_mv", "ReplicaCheck").objects.create(mv=mv, connection=conn, table_name="orders")
    # What post_migrate had created on a database migrated before the move.
    pipeline_type, _ = ContentType.objects.get_or_create(app_label="pools", model="pipeline")
    permission, _ = Permission.objects.get_or_create(
        content_type=pipeline_type, codename="change_pipeline", defaults={"name": "Can change pipeline"}
    )
    User.objects.create_user("ada").user_permissions.add(permission)


def test_it_moves_the_aws_models_without_moving_a_row():
    try:
        _seed(_migrate(BEFORE))
        new = _migrate(AFTER)

        pipeline = new.get_model("aws", "Pipeline").objects.get()
        assert (pipeline.table_name, pipeline.relay_checkpoint) == ("orders", {"shard-1": "42"})
        assert pipeline.connection.name == "sandbox" and pipeline.pool.name == "orders_cdc"
        assert new.get_model("aws", "PipelineStep").objects.get().pipeline_id == pipeline.pk
        assert new.get_model("aws", "Snapshot").objects.get().items_done == 7
        assert new.get_model("views_mv", "ReplicaCheck").objects.get().connection_id == pipeline.connection_id
        assert ContentType.objects.filter(app_label="pools", model="pipeline").count() == 0
        assert User.objects.get(username="ada").has_perm("aws.change_pipeline")
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
