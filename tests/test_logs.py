"""No query results and no secrets in any log line: the warehouse worker's log after real queries,
and the web process's log after requests that carry keys."""

from __future__ import annotations

import base64
import logging
import re
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tests.helpers.firehose import change_record, endpoint, firehose_body, firehose_headers
from tests.helpers.pools import land_direct
from tests.helpers.pools import run_in_console as run
from tests.helpers.servers import http
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def maria(client):
    user = get_user_model().objects.create_superuser("maria", "maria@example.com", "Taqueria-Data-2024")
    client.force_login(user)
    return user


def test_query_results_and_view_samples_stay_out_of_the_worker_log(client, maria, pool, warehouse_worker):
    sentinel = f"sentinel-{uuid.uuid4().hex}"
    land_direct(pool, [change_record("o1", taqueria=sentinel)])
    pool.refresh_from_db()
    wait_for(lambda: type(pool).objects.get(pk=pool.pk).record_count == 1, message="the load")
    log_start = warehouse_worker.log.stat().st_size

    # The SQL Console shows the value...
    html = run(client, f"SELECT new_image.taqueria.S AS t FROM {pool.name}")
    assert sentinel in html
    # ...and so does the Materialized View wizard's Test, with its sample rows.
    sql = f"SELECT keys.order_id.S AS order_id, new_image.taqueria.S AS taqueria FROM {pool.name}"
    reply = client.post(reverse("views_mv:create_step", args=["sql"]), {"sql": sql, "action": "test"})
    assert sentinel in reply.content.decode()

    def written() -> str:
        with warehouse_worker.log.open("rb") as log:
            log.seek(log_start)
            return log.read().decode(errors="replace")

    # The worker logs a task's success just after storing its result: wait for both lines.
    finished = re.compile(
        r"(console\.tasks\.run_sql|views_mv\.tasks\.warehouse_inspect_sql)\[[^\]]+\] succeeded"
    )
    wait_for(lambda: len(set(finished.findall(written()))) == 2, message="both success lines in the log")
    assert sentinel not in written()


def test_keys_stay_out_of_the_web_log(live_server, pool, caplog):
    creds = base64.b64encode(b"firehose:s3cret-pass").decode()
    with caplog.at_level(logging.DEBUG):
        for key in (pool.access_key, pool.access_key[:-2] + "zz", creds, "not-a-key"):
            request_id, body = firehose_body([change_record("o1")])
            http("POST", endpoint(live_server, pool), body, firehose_headers(request_id, key))
        http("POST", endpoint(live_server, pool), b"{not json", firehose_headers("r-bad", pool.access_key))
    text = "\n".join(record.getMessage() for record in caplog.records)
    for secret in (pool.access_key, pool.access_key[:-2], creds, "s3cret-pass"):
        assert secret not in text


@pytest.mark.slow
def test_aws_request_headers_are_not_logged_even_at_debug():
    import os
    import subprocess
    import sys

    code = (
        "import django, logging; django.setup(); "
        "print(logging.getLogger('root').isEnabledFor(logging.DEBUG), "
        "logging.getLogger('botocore.endpoint').isEnabledFor(logging.DEBUG), "
        "logging.getLogger('botocore.auth').isEnabledFor(logging.DEBUG))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "console.settings", "LOG_LEVEL": "DEBUG"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False", "False"]


def test_aws_secrets_stay_out_of_the_log(client, maria, moto, caplog):
    from pools.aws.models import AwsConnection

    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSENTINELKEY"
    with caplog.at_level(logging.DEBUG):
        for name, endpoint_url in (("Sandbox", moto.url), ("Nowhere", "http://127.0.0.1:1")):
            client.post(
                "/aws/connections/new/",
                {
                    "name": name,
                    "region": "us-east-1",
                    "auth_method": "access_key",
                    "access_key_id": "AKIAIOSFODNN7EXAMPLE",
                    "secret_access_key": secret,
                    "endpoint_url": endpoint_url,
                },
            )
            connection = AwsConnection.objects.get(name=name)
            client.post(f"/aws/connections/{connection.pk}/test/", HTTP_HX_REQUEST="true")
    assert AwsConnection.objects.count() == 2
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert secret not in text and "SENTINEL" not in text
