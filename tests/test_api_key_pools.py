"""A query key limited to some pools follows those pools, not their names: a pool deleted and
made again under the same name is another pool, which the key does not read."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from console.access.api import keys
from pools.models import DataPool
from pools.services import create_pool


def test_a_key_limited_to_a_pool_does_not_read_a_new_pool_of_the_same_name(transactional_db):
    orders = create_pool("orders_limited")
    other = create_pool("others_limited")
    api_key = keys.create_key("bi", "query", pools=["orders_limited"]).api_key
    assert api_key.readable_pools() == ["orders_limited"]

    orders.delete()  # what warehouse_delete_pool does once the table is dropped
    create_pool("orders_limited")
    api_key.refresh_from_db()
    assert api_key.readable_pools() == []  # still limited: to nothing, not to everything
    assert other.name not in api_key.readable_pools()


def test_a_pool_renamed_in_the_admin_stays_readable_by_its_key(transactional_db):
    pool = create_pool("before_rename")
    api_key = keys.create_key("bi", "query", pools=["before_rename"]).api_key
    DataPool.objects.filter(pk=pool.pk).update(name="after_rename")
    assert api_key.readable_pools() == ["after_rename"]


BEFORE = [("api", "0001_initial")]
AFTER = [("api", "0002_key_pools_by_identity")]


@pytest.mark.django_db(transaction=True)
def test_the_migration_maps_stored_names_to_their_pools():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    kept = DataPool.objects.create(name="kept_pool")
    DataPool.objects.create(name="unlisted_pool")
    ApiKey = old.get_model("api", "ApiKey")
    limited = ApiKey.objects.create(name="limited", scope="query", pools=["kept_pool"], key_hash="a" * 64)
    gone = ApiKey.objects.create(name="gone", scope="query", pools=["deleted_pool"], key_hash="b" * 64)
    everything = ApiKey.objects.create(name="all", scope="query", pools=None, key_hash="c" * 64)

    MigrationExecutor(connection).migrate(AFTER)
    from console.access.api.models import ApiKey as NewApiKey

    assert NewApiKey.objects.get(pk=limited.pk).readable_pools() == [kept.name]
    assert NewApiKey.objects.get(pk=gone.pk).readable_pools() == []
    assert NewApiKey.objects.get(pk=everything.pk).readable_pools() is None
    MigrationExecutor(connection).migrate(BEFORE)  # and back
    assert old.get_model("api", "ApiKey").objects.get(pk=limited.pk).pools == ["kept_pool"]
    MigrationExecutor(connection).loader.build_graph()
    MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
