"""Small things a new user tripped over (issue 20, item 10), each at its cause."""

from __future__ import annotations

import pytest

from console import roles
from pools.services import create_pool
from tests.helpers.roles import signed_in

pytestmark = pytest.mark.django_db


def test_the_sql_console_lists_every_pool_when_there_are_several(client):
    """The first pool's columns, open, pushed the second pool below the list's scroll edge."""
    create_pool("orders_cdc")
    create_pool("orders_entities_x")
    page = signed_in(client, roles.VIEWER).get("/sql/").content.decode()
    assert "orders_cdc" in page and "orders_entities_x" in page
    assert "<details open" not in page.replace("<details  open", "<details open")


def test_one_pool_opens_with_its_columns(client):
    create_pool("orders_cdc")
    page = signed_in(client, roles.VIEWER).get("/sql/").content.decode()
    assert "<details open" in page


@pytest.mark.django_db(transaction=True)
def test_the_connect_wizard_says_which_table_already_streams_to_a_pool(aws, admin_client):
    from tests.helpers.aws import make_pipeline

    ddb = aws.client("dynamodb")
    for table in ("orders", "customers"):
        ddb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    make_pipeline(create_pool("orders_cdc"), aws, "orders")
    create_pool("second_pool")
    page = admin_client.get(f"/aws/pools/second_pool/connect/source/?connection={aws.connection.pk}")
    text = page.content.decode()
    assert page.status_code == 200
    assert "already streams to <strong>orders_cdc</strong>" in text
    assert text.count("already streams to") == 1  # customers does not


@pytest.mark.django_db(transaction=True)
def test_monitoring_an_emulated_pipeline_does_not_ask_the_emulator_what_it_lacks(aws, monkeypatch):
    """moto printed a traceback into the demo's log on every monitor run."""
    from pools.aws import monitoring
    from pools.aws.provisioning import destination
    from tests.helpers.aws import make_pipeline

    pipeline = make_pipeline(create_pool("orders_cdc"), aws, "orders")  # the relay stands in

    def asked(*args, **kwargs):
        raise AssertionError("DescribeKinesisStreamingDestination was called")

    monkeypatch.setattr(destination, "find_destination", asked)
    status = monitoring.check(pipeline, aws)
    assert status["destination"] == "emulated by the sandbox relay"
