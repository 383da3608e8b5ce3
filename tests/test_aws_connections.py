"""AWS connections: secrets at rest, "Test connection" against real moto servers, clear errors."""

from __future__ import annotations

import pytest
from django.test import override_settings

from pools.aws import discovery, secrets
from pools.aws.clients import client_config, connect
from pools.aws.errors import AwsError
from pools.aws.models import AwsConnection
from tests.helpers.aws import ACCOUNT, make_connection
from tests.helpers.roles import make_user
from tests.helpers.servers import free_port


def test_it_keeps_the_secret_encrypted(db):
    connection = make_connection("http://127.0.0.1:1", secret="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    stored = AwsConnection.objects.values_list("secret_access_key_encrypted", flat=True).get(pk=connection.pk)
    assert "EXAMPLEKEY" not in stored and stored.startswith("gAAAA")  # a Fernet token
    assert AwsConnection.objects.get(pk=connection.pk).secret_access_key.endswith("EXAMPLEKEY")


def test_a_changed_secret_key_is_reported_and_fallbacks_still_decrypt(db, settings):
    token = secrets.encrypt("s3cret")
    old = settings.SECRET_KEY
    with override_settings(SECRET_KEY="another-secret-key-that-is-long-enough-0123456789"):
        with pytest.raises(secrets.SecretUnavailable, match="Enter the secret access key again"):
            secrets.decrypt(token)
        with override_settings(SECRET_KEY_FALLBACKS=[old]):
            assert secrets.decrypt(token) == "s3cret"
    with override_settings(AWS_SECRETS_KEY="a separate passphrase for AWS secrets"):
        token = secrets.encrypt("s3cret")
        assert secrets.decrypt(token) == "s3cret"
    with pytest.raises(secrets.SecretUnavailable):
        secrets.decrypt(token)  # needs AWS_SECRETS_KEY


def test_every_client_has_timeouts_retries_region_and_endpoint(aws):
    config = client_config("eu-west-1")
    assert (config.connect_timeout, config.read_timeout) == (5.0, 30.0)
    assert config.retries["mode"] == "standard" and config.region_name == "eu-west-1"
    kinesis = aws.client("kinesis")
    assert (
        kinesis.meta.endpoint_url == aws.connection.endpoint_url and kinesis.meta.region_name == "us-east-1"
    )
    assert aws.client("kinesis") is kinesis  # one client per service


def test_test_connection_shows_the_account(aws_connection):
    identity = discovery.test_connection(aws_connection)
    assert identity.account == ACCOUNT and not identity.warnings
    aws_connection.refresh_from_db()
    assert aws_connection.account_id == ACCOUNT and aws_connection.tested_at and not aws_connection.test_error


def test_no_network_is_said_plainly(db):
    connection = make_connection(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with pytest.raises(AwsError) as raised:
        discovery.test_connection(connection)
    assert raised.value.kind == "network" and str(raised.value).startswith("No network: cannot reach")
    connection.refresh_from_db()
    assert connection.test_error.startswith("No network") and not connection.account_id


def test_bad_credentials_are_said_plainly(db, auth_moto):
    connection = make_connection(auth_moto.url, key="AKIAWRONGWRONGWRONG1", secret="nope")
    with pytest.raises(AwsError) as raised:
        discovery.test_connection(connection)
    assert raised.value.kind == "credentials"
    assert "Bad credentials" in str(raised.value) and "InvalidClientTokenId" in str(raised.value)


def test_access_denied_is_said_plainly(db, auth_moto):
    connection = make_connection(auth_moto.url, key=auth_moto.key_id, secret=auth_moto.secret)
    identity = discovery.test_connection(connection)  # who am I needs no permission…
    assert identity.account == ACCOUNT
    assert "Access denied" in identity.warnings[0] and "dynamodb:ListTables" in identity.warnings[0]
    with pytest.raises(Exception) as raised:  # …listing tables does
        discovery.list_tables(connect(connection))
    from pools.aws.errors import describe

    error = describe(raised.value)
    assert error.kind == "access_denied" and "not authorized to perform: dynamodb:ListTables" in str(error)


def test_a_role_is_assumed_with_its_external_id(db, moto, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # the default chain, for STS AssumeRole
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    connection = AwsConnection.objects.create(
        name="role",
        auth_method=AwsConnection.Auth.ASSUME_ROLE,
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/shoal-console",
        external_id="shoal-7f3a",
        endpoint_url=moto.url,
    )
    identity = discovery.test_connection(connection)
    assert ":assumed-role/shoal-console/shoal-" in identity.arn


def test_the_tables_are_listed_with_key_schema(aws, orders_table):
    (table,) = discovery.list_tables(aws)
    assert (table.name, table.partition_key, table.sort_key) == ("orders", "order_id (S)", "timestamp (S)")
    assert table.stream_view == "NEW_AND_OLD_IMAGES" and table.status == "ACTIVE"


# --- pages ---------------------------------------------------------------------------------------


@pytest.fixture
def client_in(client, django_user_model):
    user = make_user("admin", "maria")
    client.force_login(user)
    return client


def test_it_creates_a_connection_and_tests_it_from_the_page(client_in, moto):
    response = client_in.post(
        "/aws/connections/new/",
        {
            "name": "Sandbox",
            "region": "us-east-1",
            "auth_method": "access_key",
            "access_key_id": "testing",
            "secret_access_key": "testing",
            "endpoint_url": moto.url + "/",
        },
    )
    connection = AwsConnection.objects.get(name="Sandbox")
    assert response.status_code == 302 and response.url == f"/aws/connections/{connection.pk}/"
    assert connection.endpoint_url == moto.url and connection.secret_access_key == "testing"
    page = client_in.post(f"/aws/connections/{connection.pk}/test/", HTTP_HX_REQUEST="true")
    assert b"Connected" in page.content and ACCOUNT.encode() in page.content
    listing = client_in.get("/aws/")
    assert b"Sandbox" in listing.content and b"account 123456789012" in listing.content

    # Editing without a secret keeps the stored one.
    client_in.post(
        f"/aws/connections/{connection.pk}/",
        {
            "name": "Sandbox",
            "region": "eu-west-1",
            "auth_method": "access_key",
            "access_key_id": "testing",
            "endpoint_url": moto.url,
        },
    )
    connection.refresh_from_db()
    assert connection.region == "eu-west-1" and connection.secret_access_key == "testing"


def test_the_connection_form_asks_for_what_the_method_needs(client_in):
    page = client_in.post(
        "/aws/connections/new/", {"name": "x", "region": "us-east-1", "auth_method": "access_key"}
    )
    assert page.status_code == 200 and page.content.count(b"Required for an access key pair.") == 2
    page = client_in.post(
        "/aws/connections/new/",
        {
            "name": "y",
            "region": "us-east-1",
            "auth_method": "assume_role",
            "role_arn": "arn:aws:iam::12:role/x",
        },
    )
    assert b"A role ARN such as" in page.content
    page = client_in.post(
        "/aws/connections/new/",
        {"name": "z", "region": "mars-1", "auth_method": "default"},
    )
    assert b"Select a valid choice" in page.content
    assert not AwsConnection.objects.exists()


def test_a_connection_in_use_cannot_be_deleted(client_in, pool, aws_connection):
    from pools.aws.models import Pipeline

    pipeline = Pipeline.objects.create(
        pool=pool,
        connection=aws_connection,
        table_name="orders",
        stream_name="s",
        bucket_name="b",
        role_name="r",
        firehose_name="f",
        http_endpoint_name="h",
        endpoint_url="https://x/",
    )
    page = client_in.post(f"/aws/connections/{aws_connection.pk}/delete/", follow=True)
    assert b"tear them down first" in page.content and AwsConnection.objects.exists()
    Pipeline.objects.filter(pk=pipeline.pk).update(status=Pipeline.Status.REMOVED)
    client_in.post(f"/aws/connections/{aws_connection.pk}/delete/")
    assert not AwsConnection.objects.exists() and not Pipeline.objects.exists()
