"""Pool access keys: encrypted at rest, still checked fast at the endpoint, revealed and rotated."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.urls import reverse

from pools.models import DataPool
from tests.helpers.firehose import change_record, endpoint, firehose_body, firehose_headers
from tests.helpers.servers import http

pytestmark = pytest.mark.django_db(transaction=True)


def stored_row(pool) -> str:
    """Everything the database holds for the pool, as one string."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM pools_datapool WHERE id = %s", [pool.pk])
        return " ".join(str(value) for value in cursor.fetchone())


def test_the_database_never_holds_the_key_itself(pool):
    key = DataPool.objects.get(pk=pool.pk).access_key
    assert len(key) >= 40
    assert key not in stored_row(pool)


def test_the_endpoint_accepts_the_key_and_refuses_others(live_server, pool):
    request_id, body = firehose_body([change_record("o1")])
    url = endpoint(live_server, pool)
    assert http("POST", url, body, firehose_headers(request_id, pool.access_key)).status == 200
    assert http("POST", url, body, firehose_headers("r2", pool.access_key[:-1] + "x")).status == 401
    assert http("POST", url, body, firehose_headers("r3", "")).status == 401


def test_a_pool_fed_by_a_view_has_no_key_that_opens_it(transactional_db):
    mv_pool = DataPool.objects.create(name="mv_target", kind=DataPool.Kind.MATERIALIZED, access_key="")
    assert mv_pool.access_key == "" and not mv_pool.check_access_key("")


def test_rotation_through_the_console_retires_the_old_key(live_server, client, pool):
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.com", "pw-123-abc-XYZ"))
    old = pool.access_key
    assert client.post(reverse("pools:rotate_key", args=[pool.name])).status_code == 302
    new = DataPool.objects.get(pk=pool.pk).access_key
    assert new != old and new not in stored_row(pool)
    url = endpoint(live_server, pool)
    request_id, body = firehose_body([change_record("o2")])
    assert http("POST", url, body, firehose_headers(request_id, old)).status == 401
    assert http("POST", url, body, firehose_headers(request_id, new)).status == 200
    # The page reveals the key in force.
    assert new in client.get(reverse("pools:detail", args=[pool.name])).content.decode()


def test_basic_credentials_in_the_access_key_header_still_work(live_server, pool):
    import base64

    creds = base64.b64encode(b"firehose:s3cret-pass").decode()
    request_id, body = firehose_body([change_record("o3")])
    assert http("POST", endpoint(live_server, pool), body, firehose_headers(request_id, creds)).status == 200
    wrong = base64.b64encode(b"firehose:nope").decode()
    assert http("POST", endpoint(live_server, pool), body, firehose_headers("r-w", wrong)).status == 401


def test_the_migration_encrypts_existing_keys(transactional_db):
    from django.db.migrations.executor import MigrationExecutor

    before = [("pools", "0007_streaming_precision_microsecond")]
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes("pools")
    executor.migrate(before)
    try:
        old_apps = MigrationExecutor(connection).loader.project_state(before).apps
        old_apps.get_model("pools", "DataPool").objects.create(
            name="legacy", public_id="f" * 32, access_key="legacy-plaintext-key-0123456789"
        )
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(latest)
        pool = DataPool.objects.get(name="legacy")
        assert pool.access_key == "legacy-plaintext-key-0123456789"
        assert pool.check_access_key("legacy-plaintext-key-0123456789")
        assert "legacy-plaintext-key-0123456789" not in stored_row(pool)
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
