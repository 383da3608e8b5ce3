"""The sandbox relay's fields left Pipeline for SandboxRelay with their values.

The database is taken back to before the move, pipelines are written through the models as they
were then, and the move is applied (then undone): the values follow the rows both ways.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from pools.models import DataPool

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("aws", "0001_initial")]
AFTER = [("aws", "0002_sandbox_relay")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


def _seed(old) -> dict[str, int]:
    conn = old.get_model("aws", "AwsConnection").objects.create(name="sandbox")
    ids = {}
    for name, fields in {
        "relayed": {"destination_emulated": True, "relay_checkpoint": {"arn:stream": {"shard-1": "42"}}},
        "emulated": {"destination_emulated": True},
        "plain": {},
    }.items():
        pool = DataPool.objects.create(name=f"{name}_cdc")  # the pools app is not migrated here
        ids[name] = (
            old.get_model("aws", "Pipeline")
            .objects.create(
                pool_id=pool.pk,
                connection=conn,
                table_name=name,
                stream_name=f"{name}-cdc",
                bucket_name="b",
                role_name="r",
                firehose_name="f",
                http_endpoint_name="h",
                endpoint_url="https://example.com/",
                **fields,
            )
            .pk
        )
    return ids


def test_the_relay_fields_move_to_their_own_model_and_back():
    try:
        ids = _seed(_migrate(BEFORE))
        new = _migrate(AFTER)

        relays = {
            r.pipeline_id: (r.emulated, r.checkpoint)
            for r in new.get_model("aws", "SandboxRelay").objects.all()
        }
        assert relays == {
            ids["relayed"]: (True, {"arn:stream": {"shard-1": "42"}}),
            ids["emulated"]: (True, {}),
        }
        assert new.get_model("aws", "Pipeline").objects.count() == 3

        old = _migrate(BEFORE)
        back = {
            p.pk: (p.destination_emulated, p.relay_checkpoint)
            for p in old.get_model("aws", "Pipeline").objects.all()
        }
        assert back == {
            ids["relayed"]: (True, {"arn:stream": {"shard-1": "42"}}),
            ids["emulated"]: (True, {}),
            ids["plain"]: (False, {}),
        }
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
