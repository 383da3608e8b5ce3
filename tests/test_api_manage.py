"""The management API (/api/v1/…) against real components: a live server, a warehouse worker,
Redis. Every operation goes through the services the console uses, so the messages are the same."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from console.access.api import keys
from pools.models import DataPool, Delivery
from tests.helpers.firehose import change_record, endpoint, firehose_body, firehose_headers
from tests.helpers.pools import GUIDE_STEP_4
from tests.helpers.servers import http
from tests.helpers.waiting import wait_for


def call(live_server, method: str, path: str, key: str | None, body=None, **headers):
    headers = {k.replace("_", "-"): v for k, v in headers.items()}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    return http(method, live_server.url + "/api/v1" + path, data, headers)


@pytest.fixture
def editor_key(transactional_db):
    return keys.create_key(f"ops-{uuid.uuid4().hex[:6]}", "manage").key


@pytest.fixture
def admin_key(transactional_db):
    return keys.create_key(f"root-{uuid.uuid4().hex[:6]}", "manage", role="admin").key


def test_pools_create_with_table_settings_get_list_statistics_delete(
    live_server, editor_key, warehouse_worker
):
    name = f"api_{uuid.uuid4().hex[:8]}"
    body = {"name": name, "table": {"mode": "mutable", "unique": ["event_id"], "time_column": "_received_at"}}
    created = call(live_server, "POST", "/pools", editor_key, body)
    assert created.status == 201, created.body
    pool = created.json()
    assert pool["name"] == name and pool["table"]["engine"].startswith("ReplacingMergeTree")
    assert pool["access_key"] is None  # editors do not see access keys, as in the console
    assert name in [p["name"] for p in call(live_server, "GET", "/pools", editor_key).json()]

    again = call(live_server, "POST", "/pools", editor_key, body)
    assert again.status == 422 and again.headers["Content-Type"] == "application/problem+json"
    assert again.json()["detail"] == f"A Data Pool named {name!r} already exists."
    bad = call(live_server, "POST", "/pools", editor_key, {"name": "select"})
    assert bad.status == 422 and "reserved" in bad.json()["detail"]
    unsure = call(
        live_server, "POST", "/pools", editor_key, {"name": name + "x", "table": {"mode": "mutable"}}
    )
    assert unsure.status == 422, unsure.body

    db_pool = DataPool.objects.get(name=name)
    request_id, payload = firehose_body([change_record("o1"), change_record("o2"), b"not json"])
    reply = http(
        "POST", endpoint(live_server, db_pool), payload, firehose_headers(request_id, db_pool.access_key)
    )
    assert reply.status == 200
    wait_for(lambda: Delivery.objects.filter(pool=db_pool, status="loaded").exists(), message="load")
    stats = call(live_server, "GET", f"/pools/{name}/statistics", editor_key).json()
    assert (
        stats["record_count"] == 2 and stats["quarantined_count"] == 1 and stats["deliveries"]["loaded"] == 1
    )
    deliveries = call(live_server, "GET", f"/pools/{name}/deliveries", editor_key).json()
    assert [d["request_id"] for d in deliveries] == [request_id]
    quarantined = call(live_server, "GET", f"/pools/{name}/quarantine", editor_key).json()
    assert len(quarantined) == 1 and base64.b64decode(quarantined[0]["data"]) == b"not json"
    replayed = call(live_server, "POST", f"/pools/{name}/quarantine/replay", editor_key, {})
    assert replayed.status == 200 and len(replayed.json()["deliveries"]) == 1
    assert call(live_server, "GET", f"/pools/{name}/quarantine", editor_key).json() == []

    gone = call(live_server, "DELETE", f"/pools/{name}", editor_key)
    assert gone.status == 202 and gone.json()["status"] == "deleting"
    assert call(live_server, "GET", f"/pools/{name}", editor_key).status == 404


def test_idempotency_key_creates_once(live_server, editor_key, warehouse_worker):
    name = f"idem_{uuid.uuid4().hex[:8]}"
    first = call(live_server, "POST", "/pools", editor_key, {"name": name}, Idempotency_Key="abc-1")
    second = call(live_server, "POST", "/pools", editor_key, {"name": name}, Idempotency_Key="abc-1")
    assert first.status == second.status == 201 and first.json() == second.json()
    assert DataPool.objects.filter(name=name).count() == 1
    other = call(live_server, "POST", "/pools", editor_key, {"name": name + "2"}, Idempotency_Key="abc-1")
    assert other.status == 422 and "different request" in other.json()["detail"]


def test_each_role_of_key_is_limited_as_the_role_is(live_server, editor_key, admin_key, warehouse_worker):
    from pools.services import create_pool

    pool = create_pool(f"keys_{uuid.uuid4().hex[:8]}")
    query_key = keys.create_key("reader", "query").key
    assert call(live_server, "GET", "/pools", None).status == 401
    assert call(live_server, "GET", "/pools", "shoal_wrong").status == 401
    refused = call(live_server, "GET", "/pools", query_key)
    assert refused.status == 403 and "query key" in refused.json()["detail"]
    assert call(live_server, "POST", f"/pools/{pool.name}/rotate-key", editor_key).status == 403
    rotated = call(live_server, "POST", f"/pools/{pool.name}/rotate-key", admin_key)
    assert rotated.status == 200
    new_key = rotated.json()["access_key"]
    assert call(live_server, "GET", f"/pools/{pool.name}", admin_key).json()["access_key"] == new_key
    request_id, payload = firehose_body([change_record("o1")])
    old = http("POST", endpoint(live_server, pool), payload, firehose_headers(request_id, pool.access_key))
    assert old.status == 401
    assert (
        http("POST", endpoint(live_server, pool), payload, firehose_headers(request_id, new_key)).status
        == 200
    )


def test_a_materialized_view_from_the_guides_answers(live_server, editor_key, warehouse_worker):
    from pools.services import create_pool

    source = create_pool(f"orders_{uuid.uuid4().hex[:6]}")
    records = [change_record("o1", quantity=3), change_record("o2", quantity=5)]
    request_id, payload = firehose_body(records)
    assert (
        http(
            "POST", endpoint(live_server, source), payload, firehose_headers(request_id, source.access_key)
        ).status
        == 200
    )
    wait_for(lambda: Delivery.objects.filter(pool=source, status="loaded").exists(), message="load")
    target = source.name + "_entities"
    body = {
        "name": source.name + "_mv",
        "sql": GUIDE_STEP_4.replace("my_dynamo_orders_change_events", source.name),
        "target_pool": target,
        "mutable": True,
        "unique": ["order_id"],
        "time_column": "timestamp",
        "backfill": True,
    }
    created = call(live_server, "POST", "/views", editor_key, body)
    assert created.status == 201, created.body
    view = created.json()
    assert view["source_pool"] == source.name and view["target_pool"] == target
    assert "ReplacingMergeTree" in view["engine"]

    def backfilled():
        data = call(live_server, "GET", f"/views/{body['name']}", editor_key).json()
        return data if data["backfill"] and data["backfill"]["status"] == "done" else None

    done = wait_for(backfilled, timeout=60, message="backfill")
    assert (
        done["backfill"]["rows_done"] == 2
        and done["backfill"]["percent"] == 100
        and done["status"] == "active"
    )
    bad = call(live_server, "POST", "/views", editor_key, {**body, "name": "v2", "sql": "SELECT 1"})
    assert bad.status == 422 and "reads exactly one Data Pool" in bad.json()["detail"]
    assert call(live_server, "DELETE", f"/views/{body['name']}", editor_key).status == 202
    wait_for(
        lambda: call(live_server, "GET", f"/views/{body['name']}", editor_key).status == 404, message="drop"
    )


def test_the_openapi_document_describes_every_operation(live_server, editor_key):
    assert http("GET", live_server.url + "/api/v1/openapi.json").status == 401
    reply = call(live_server, "GET", "/openapi.json", editor_key)
    document = reply.json()
    assert document["openapi"].startswith("3.")
    assert {
        "/api/v1/sql",
        "/api/v1/pools",
        "/api/v1/pools/{name}",
        "/api/v1/views",
        "/api/v1/views/{name}",
    } <= set(document["paths"])
    assert document["components"]["securitySchemes"]["ManageKey"]["scheme"] == "bearer"


def test_without_a_key_the_api_says_which_key_each_operation_takes(client):
    sql = client.post("/api/v1/sql", {"sql": "SELECT 1"}, content_type="application/json")
    assert sql.status_code == 401 and "an API key (query or manage)" in sql.json()["detail"]
    pools = client.get("/api/v1/pools")
    assert pools.status_code == 401 and "a manage API key" in pools.json()["detail"]


def test_the_api_reference_shows_the_authorization_header_as_written():
    from console.access.api.manage.api import api

    assert "`Authorization: Bearer <key>`" in api.description  # a code span: <key> is not a tag
