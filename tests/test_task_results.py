"""A query's result belongs to the user and the page that asked for it: Preview Data, the SQL
Console. Anyone else who learns a task id (they appear in logs) gets a 404, and leaves the
result where it was for its owner."""

from __future__ import annotations

import re
import uuid

from celery.result import AsyncResult
from django.test import Client

from console import roles
from console.tasks import run_sql
from tests.helpers.roles import signed_in
from tests.helpers.waiting import wait_for

SECRET_ROWS = {"columns": ["secret"], "types": ["String"], "rows": [["admins-only-7f3a"]]}


def _stored_result() -> str:
    """An admin's finished SQL Console result, as the warehouse worker stores it."""
    task_id = str(uuid.uuid4())
    run_sql.backend.store_result(task_id, {**SECRET_ROWS, "statistics": {}}, "SUCCESS")
    return task_id


def test_another_users_result_by_task_id_is_a_404_and_stays_for_its_owner(pool):
    task_id = _stored_result()
    viewer = signed_in(Client(), roles.VIEWER)
    for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
        reply = viewer.get(f"/pools/{pool.name}/preview/{task_id}/", **headers)
        assert reply.status_code == 404, reply.status_code
        assert b"admins-only-7f3a" not in reply.content
    assert AsyncResult(task_id).ready() and AsyncResult(task_id).result["rows"] == SECRET_ROWS["rows"]


def _poll(client: Client, url: str):
    answers = []

    def done() -> bool:
        answers.append(client.get(url, HTTP_HX_REQUEST="true"))
        return answers[-1].status_code != 200 or b"Running the preview" not in answers[-1].content

    wait_for(done, message="the preview's result")
    return answers[-1]


def test_a_preview_result_is_read_by_its_user_on_its_pool_only(pool, warehouse_worker):
    from pools.services import create_pool

    other_pool = create_pool(f"other_{uuid.uuid4().hex[:8]}")
    owner = signed_in(Client(), roles.VIEWER)
    page = owner.get(f"/pools/{pool.name}/preview/", HTTP_HX_REQUEST="true").content.decode()
    url = re.search(r'hx-get="([^"?]+)', page).group(1)
    token = url.rstrip("/").rsplit("/", 1)[1]

    # Someone else with the same URL, or the owner with it on another pool's page: 404.
    someone = signed_in(Client(), roles.ADMIN, username="someone")
    assert someone.get(url, HTTP_HX_REQUEST="true").status_code == 404
    assert owner.get(f"/pools/{other_pool.name}/preview/{token}/").status_code == 404
    assert owner.get(f"/pools/{pool.name}/preview/{token}x/").status_code == 404

    result = _poll(owner, url)
    assert result.status_code == 200 and b"newest rows" in result.content, result.content
