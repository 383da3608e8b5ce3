"""Which initial snapshot suits a table: its size, and each method's time and cost, for the
backfill card's choice between a parallel Scan and DynamoDB's export to S3.

Prices are AWS's list prices in us-east-1 (2025); the card says so, and that other regions differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pools.aws import discovery, export_snapshot
from pools.aws.clients import connect

SCAN_PRICE_PER_MILLION_READ_UNITS = 0.125  # on-demand, eventually consistent reads are half a unit
EXPORT_PRICE_PER_GB = 0.10
PITR_PRICE_PER_GB_MONTH = 0.20
# Past this size the card recommends the export: a Scan would take long and read the production
# table's capacity.
EXPORT_ABOVE_BYTES = 10 * 1024**3


@dataclass
class Plan:
    size_bytes: int | None = None
    item_count: int | None = None
    pitr_enabled: bool | None = None
    error: str = ""

    @property
    def gigabytes(self) -> float:
        return (self.size_bytes or 0) / 1024**3

    @property
    def scan_read_units(self) -> int:
        return math.ceil((self.size_bytes or 0) / 4096 * 0.5)

    @property
    def scan_minutes_at_default(self) -> float:
        """At the form's default budget of 100 RCU/s."""
        return round(self.scan_read_units / 100 / 60, 1)

    @property
    def scan_cost(self) -> float:
        return self.scan_read_units / 1e6 * SCAN_PRICE_PER_MILLION_READ_UNITS

    @property
    def export_cost(self) -> float:
        return self.gigabytes * EXPORT_PRICE_PER_GB

    @property
    def pitr_cost_per_month(self) -> float:
        return self.gigabytes * PITR_PRICE_PER_GB_MONTH

    @property
    def recommended(self) -> str:
        return "export" if (self.size_bytes or 0) > EXPORT_ABOVE_BYTES else "scan"


def plan(pipeline) -> Plan:
    """The table's size and point-in-time recovery, asked of AWS; the error when it cannot say."""
    try:
        aws = connect(pipeline.connection)
        table = discovery.describe_table(aws, pipeline.table_name)
        pitr = export_snapshot.pitr_enabled(aws.client("dynamodb"), pipeline.table_name)
    except Exception as exc:  # the card still offers both methods
        return Plan(error=str(exc)[:300])
    return Plan(size_bytes=table.size_bytes, item_count=table.item_count, pitr_enabled=pitr)
