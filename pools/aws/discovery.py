"""Read-only look-ups for the console: who am I, which tables, streams and buckets are there.

These run in the web process while the user waits (short timeouts, see clients.py); everything that
creates or waits runs in the `default` worker (tasks.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError
from django.utils import timezone

from pools.aws import errors
from pools.aws.clients import Aws, connect
from pools.aws.models import AwsConnection

MAX_TABLES = 100  # tables described for the wizard (one DescribeTable each)


@dataclass
class Identity:
    account: str
    arn: str
    user_id: str
    warnings: list[str] = field(default_factory=list)


def test_connection(connection: AwsConnection, *, save: bool = True) -> Identity:
    """STS GetCallerIdentity, plus a DynamoDB ListTables to spot a missing permission early.

    Raises errors.AwsError (credentials / network / access_denied / …); records the outcome on the
    connection when `save`.
    """
    try:
        aws = connect(connection)
        found = aws.client("sts").get_caller_identity()
    except Exception as exc:  # whatever went wrong is reported, classified
        error = errors.describe(exc)
        if save and connection.pk:
            AwsConnection.objects.filter(pk=connection.pk).update(
                tested_at=timezone.now(), test_error=str(error), account_id="", caller_arn=""
            )
        raise error from exc
    identity = Identity(account=found["Account"], arn=found["Arn"], user_id=found["UserId"])
    try:
        aws.client("dynamodb").list_tables(Limit=1)
    except (BotoCoreError, ClientError) as exc:
        identity.warnings.append(f"Listing DynamoDB tables failed. {errors.describe(exc)}")
    if save and connection.pk:
        AwsConnection.objects.filter(pk=connection.pk).update(
            tested_at=timezone.now(),
            test_error="",
            account_id=identity.account,
            caller_arn=identity.arn,
        )
    return identity


@dataclass
class TableInfo:
    name: str
    arn: str = ""
    status: str = ""
    partition_key: str = ""
    sort_key: str = ""
    item_count: int | None = None
    size_bytes: int | None = None
    stream_view: str = ""
    error: str = ""
    streams_to: str = ""  # the pool a pipeline of this connection already streams the table to

    @property
    def key_schema(self) -> str:
        return self.partition_key + (f" + {self.sort_key}" if self.sort_key else "")


def _key_schema(table: dict) -> tuple[str, str]:
    types = {a["AttributeName"]: a["AttributeType"] for a in table.get("AttributeDefinitions", [])}
    part = sort = ""
    for key in table.get("KeySchema", []):
        label = f"{key['AttributeName']} ({types.get(key['AttributeName'], '?')})"
        if key["KeyType"] == "HASH":
            part = label
        else:
            sort = label
    return part, sort


def describe_table(aws: Aws, name: str) -> TableInfo:
    table = aws.client("dynamodb").describe_table(TableName=name)["Table"]
    part, sort = _key_schema(table)
    stream = table.get("StreamSpecification") or {}
    return TableInfo(
        name=table["TableName"],
        arn=table.get("TableArn", ""),
        status=table.get("TableStatus", ""),
        partition_key=part,
        sort_key=sort,
        item_count=table.get("ItemCount"),
        size_bytes=table.get("TableSizeBytes"),
        stream_view=stream.get("StreamViewType", "") if stream.get("StreamEnabled") else "",
    )


def list_tables(aws: Aws) -> list[TableInfo]:
    """Tables of the connection's region with their key schema and (approximate) item count."""
    names: list[str] = []
    for page in aws.client("dynamodb").get_paginator("list_tables").paginate():
        names += page["TableNames"]
    tables = []
    for name in names[:MAX_TABLES]:
        try:
            tables.append(describe_table(aws, name))
        except ClientError as exc:
            tables.append(TableInfo(name=name, error=str(errors.describe(exc))))
    return tables


@dataclass
class StreamInfo:
    name: str
    arn: str = ""
    status: str = ""
    mode: str = ""


def list_streams(aws: Aws) -> list[StreamInfo]:
    kinesis = aws.client("kinesis")
    streams = []
    for page in kinesis.get_paginator("list_streams").paginate():
        for summary in page.get("StreamSummaries", []):
            streams.append(
                StreamInfo(
                    name=summary["StreamName"],
                    arn=summary.get("StreamARN", ""),
                    status=summary.get("StreamStatus", ""),
                    mode=(summary.get("StreamModeDetails") or {}).get("StreamMode", ""),
                )
            )
        if not page.get("StreamSummaries"):
            streams += [StreamInfo(name=name) for name in page.get("StreamNames", [])]
    return sorted(streams, key=lambda s: s.name)


def list_buckets(aws: Aws) -> list[str]:
    return sorted(b["Name"] for b in aws.client("s3").list_buckets().get("Buckets", []))
