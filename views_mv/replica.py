"""The Replica check: does a Materialized View's pool equal the DynamoDB table it replicates?

It compares, item by item, what a Scan of the table returns with the `new_image` the view keeps
for each record (the guide's SELECT saves it: "Always save the new and old image"), keyed by the
table's primary key. Small tables are compared whole; for larger ones the counts, plus every item
of the first pages of a Scan. Two steps, because the warehouse worker holds no AWS credentials (it
runs sandboxed, see docs/security.md): the `default` worker scans the table, then the warehouse
worker reads the pool and compares.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field

from console import sql_guard
from console.warehouse import Warehouse
from console.warehouse.base import quote_identifier, quote_string
from pools.tables import table_ref

MAX_ITEMS = 10_000
SHOWN = 20


@dataclass
class Report:
    table: str
    key_names: list[str]
    items_in_table: int = 0
    rows_in_pool: int = 0
    checked: int = 0
    sampled: bool = False
    missing: list[str] = field(default_factory=list)  # in the table, not in the pool
    extra: list[str] = field(default_factory=list)  # in the pool, not in the table
    different: list[dict] = field(default_factory=list)  # {"key", "attributes": {name: [table, pool]}}
    error: str = ""

    @property
    def equal(self) -> bool:
        return not (self.missing or self.extra or self.different or self.error) and (
            self.sampled or self.items_in_table == self.rows_in_pool
        )

    def as_dict(self) -> dict:
        return {**asdict(self), "equal": self.equal}


def normalise(value):
    """DynamoDB JSON made comparable: sets sorted, binary as base64 text."""
    if isinstance(value, dict):
        out = {}
        for tag, inner in value.items():
            if tag in ("SS", "NS", "BS"):
                out[tag] = sorted(normalise(v) for v in inner)
            else:
                out[tag] = normalise(inner)
        return out
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    return value


def item_key(item: dict, key_names: list[str]) -> str:
    return json.dumps([normalise(item.get(name)) for name in key_names], sort_keys=True)


def compare(table_items: dict[str, dict], pool_images: dict[str, dict], *, whole: bool) -> tuple:
    """(missing, extra, different) between two {key: item} maps of DynamoDB JSON items."""
    missing = sorted(k for k in table_items if k not in pool_images)
    extra = sorted(k for k in pool_images if k not in table_items) if whole else []
    different = []
    for key in sorted(set(table_items) & set(pool_images)):
        a, b = normalise(table_items[key]), normalise(pool_images[key])
        if a != b:
            names = sorted(set(a) | set(b))
            different.append(
                {"key": key, "attributes": {n: [a.get(n), b.get(n)] for n in names if a.get(n) != b.get(n)}}
            )
    return missing, extra, different


def scan_table(ddb, table: str, *, max_items: int = MAX_ITEMS) -> dict:
    """Read the DynamoDB table (where the AWS credentials are: the `default` worker). Returns what
    compare_with_pool needs, as JSON: the items (normalised, keyed), whether they are a sample."""
    described = ddb.describe_table(TableName=table)["Table"]
    key_names = [k["AttributeName"] for k in described["KeySchema"]]
    items: dict[str, dict] = {}
    sampled = False
    kwargs: dict = {"TableName": table, "ConsistentRead": True}
    while True:
        page = ddb.scan(**kwargs)
        for item in page["Items"]:
            items[item_key(item, key_names)] = normalise(item)
        if "LastEvaluatedKey" not in page:
            break
        if len(items) >= max_items:
            sampled = True
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    first = key_names[0]
    kind = next(a["AttributeType"] for a in described["AttributeDefinitions"] if a["AttributeName"] == first)
    return {
        "table": table,
        "key_names": key_names,
        "items": items,
        "sampled": sampled,
        "item_count": int(described.get("ItemCount", 0)),
        "first_key": [first, kind],
    }


def compare_with_pool(warehouse: Warehouse, target_name: str, scanned: dict) -> Report:
    """Compare a scan_table() result with the pool (in the warehouse worker, which holds no AWS
    credentials)."""
    key_names, items = scanned["key_names"], scanned["items"]
    report = Report(table=scanned["table"], key_names=key_names, sampled=scanned["sampled"])
    columns = {row[0] for row in warehouse.query(f"DESCRIBE TABLE {table_ref(target_name)}").rows}
    if "new_image" not in columns:
        report.error = "The view does not keep new_image: add `new_image` to its SELECT to check the replica."
        return report

    # The pool's current state (final=1 on the read-only connection), the images only.
    condition = ""
    if report.sampled:
        first, kind = scanned["first_key"]
        values = ", ".join(quote_string(str(i[first][kind])) for i in items.values())
        condition = f" WHERE toString(new_image.{quote_identifier(first)}.{kind}) IN ({values})"
    images_sql = f"SELECT toJSONString(new_image) FROM {table_ref(target_name)}{condition}"
    sql_guard.check(warehouse, images_sql)
    rows = warehouse.query(images_sql, readonly=True).rows
    images = {}
    for (text,) in rows:
        image = json.loads(text)
        if image:
            images[item_key(image, key_names)] = image
    report.rows_in_pool = warehouse.query(
        f"SELECT count() FROM {table_ref(target_name)}", readonly=True
    ).rows[0][0]
    report.items_in_table = scanned["item_count"] if report.sampled else len(items)
    report.checked = len(items)
    report.missing, report.extra, report.different = compare(items, images, whole=not report.sampled)
    report.missing, report.extra = report.missing[:SHOWN], report.extra[:SHOWN]
    report.different = report.different[:SHOWN]
    return report
