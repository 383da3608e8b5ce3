"""The sandbox's stand-in for DynamoDB's export to S3 (emulator connections only).

moto 5.2 accepts ExportTableToPointInTime but writes one gzip file under a random folder, without
the manifests AWS documents, so Shoal's reader could not load it. For a connection to a local
emulator (`make demo`), the export is written here instead, in AWS's layout
(pools/aws/export_layout.py), from a Scan of the emulated table into the emulated bucket, and
DescribeExport answers COMPLETED; everything after (manifests, checksums, the load) is the code
path an export from AWS takes. Against AWS these two functions are never called.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from pools.aws import export_layout
from pools.aws.clients import Aws

PARTITIONS = 4  # data files, as partitions would give; some may be empty


class SandboxExport:
    """The two export calls for an emulated table: the export is written at once, from a Scan."""

    def __init__(self, aws: Aws):
        self.aws = aws

    def start(self, *, table: str, table_arn: str, bucket: str, prefix: str, token: str) -> str:
        """Returns the export's ARN (the same for the same token, as AWS's ClientToken)."""
        arn = f"{table_arn}/export/{hashlib.sha1(token.encode()).hexdigest()[:14]}-sandbox"
        parts: list[list[dict]] = [[] for _ in range(PARTITIONS)]
        for page in self.aws.client("dynamodb").get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                parts[hashlib.sha1(repr(item).encode()).digest()[0] % PARTITIONS].append(item)
        export_layout.write_export(
            self.aws.client("s3"),
            bucket=bucket,
            prefix=prefix,
            export_arn=arn,
            table_arn=table_arn,
            export_time=datetime.now(UTC),
            partitions=parts,
        )
        return arn

    def describe(self, *, export_arn: str, bucket: str, prefix: str) -> dict:
        return {
            "ExportArn": export_arn,
            "ExportStatus": "COMPLETED",
            "S3Bucket": bucket,
            "S3Prefix": prefix,
            "ExportManifest": export_layout.folder(prefix, export_arn) + "/manifest-summary.json",
        }
