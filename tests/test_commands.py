"""The scriptable interface: create_pool and sql, as a script would call them."""

from __future__ import annotations

import json
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from console import warehouse_client
from pools.models import DataPool
from tests.helpers.firehose import change_record, endpoint, firehose_body, firehose_headers
from tests.helpers.servers import http
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_pool_prints_its_endpoint_and_access_key_as_json(pool_name, live_server):
    data = json.loads(run("create_pool", pool_name, "--description", "orders", "--json"))
    pool = DataPool.objects.get(name=pool_name)
    assert data["id"] == pool.pk and data["name"] == pool_name
    assert data["access_key"] == pool.access_key
    assert data["endpoint_url"].endswith(f"/ingest/firehose/{pool.public_id}")


def test_create_pool_refuses_a_bad_or_taken_name(pool_name):
    with pytest.raises(CommandError, match="letters, digits and underscores"):
        run("create_pool", "1-bad name")
    run("create_pool", pool_name)
    with pytest.raises(CommandError, match="already exists"):
        run("create_pool", pool_name.upper())
    with pytest.raises(CommandError, match="both"):
        run("create_pool", pool_name + "_x", "--basic-auth-user", "u")


def test_create_pool_stores_the_basic_auth_password_hashed(pool_name):
    run("create_pool", pool_name, "--basic-auth-user", "fh", "--basic-auth-password", "pa55-word!")
    pool = DataPool.objects.get(name=pool_name)
    assert "pa55-word!" not in pool.basic_auth_password
    assert pool.check_basic_auth("fh", "pa55-word!") and not pool.check_basic_auth("fh", "nope")


def test_sql_uses_pool_names_as_table_names(live_server, pool, warehouse_worker):
    request_id, body = firehose_body([change_record("o1", quantity=5), change_record("o2", quantity=7)])
    assert (
        http("POST", endpoint(live_server, pool), body, firehose_headers(request_id, pool.access_key)).status
        == 200
    )
    wait_for(lambda: DataPool.objects.get(pk=pool.pk).record_count == 2, message="load")

    query = (
        f"SELECT keys.order_id.S AS id, toInt32OrNull(new_image.quantity.N) AS q FROM {pool.name} ORDER BY id"
    )
    data = json.loads(run("sql", query, "--format", "json"))
    assert data == {
        "columns": ["id", "q"],
        "types": ["Dynamic", "Dynamic"],
        "rows": [["o1", 5], ["o2", 7]],
    }
    table = run("sql", query)
    assert "o1" in table and "2 rows" in table


@pytest.mark.parametrize(
    "query",
    [
        "INSERT INTO {pool} (event_id) VALUES ('x')",
        "DROP TABLE {pool}",
        "CREATE TABLE t (x Int8) ENGINE=Memory",
    ],
)
def test_sql_is_read_only(pool, warehouse_worker, query):
    from console import warehouse_client
    from console.tasks import run_sql

    exists = f"EXISTS TABLE {pool.name}"
    wait_for(lambda: warehouse_client.call(run_sql, exists)["rows"] == [[1]], message="table created")
    with pytest.raises(CommandError, match="readonly"):
        run("sql", query.format(pool=pool.name))


def test_sql_reports_warehouse_errors_clearly(warehouse_worker):
    with pytest.raises(CommandError, match="UNKNOWN_TABLE|does not exist"):
        run("sql", "SELECT * FROM no_such_pool")


def test_sql_says_so_at_once_when_no_warehouse_worker_runs(monkeypatch):
    # A heartbeat key no worker writes (a fixed Redis database may be another test run's).
    monkeypatch.setattr(warehouse_client, "HEARTBEAT_KEY", "shoal:test:no-worker-beats-here")
    started = time.monotonic()
    with pytest.raises(CommandError, match="No warehouse worker is running"):
        run("sql", "SELECT 1")
    assert time.monotonic() - started < 5
