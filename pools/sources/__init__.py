"""Source types: where a Data Pool's records come from, and what each kind of source provides.

A source type (base.SourceType) holds, in one place, everything the rest of Shoal asks of a kind of
source:

    columns          the pool table's columns            → tables.create_table, Schema, table settings
    load_select      landed bodies → rows (warehouse SQL) → the loader (pools/loader/batch.py)
    rejected_select  the records a load left out, why     → quarantine
    record_select    one record of a body                 → quarantine of a refused record
    preview_columns  the order Preview Data shows         → tables.preview_select
    wizard_steps     the Create Data Pool wizard's steps, by name (pools/wizard.py)
    aws_steps        the AWS provisioning steps, by key, in the order they run (pools/aws/)
    versions_by_change_time  its records carry their change's time → views_mv (Mutable versioning)

The apps above ask what a pool's source allows (`fed_by_source`, `kinds`,
`versions_by_change_time`; DataPool.receives_deliveries) instead of testing its kind.

Steps are named rather than imported: the wizard and the AWS pipeline keep their own step
registries (what a step shows, ensures and removes), and a source type only says which of their
steps it goes through and in what order, so this package depends on neither.

What a source type does not decide: how a delivery lands (pools/ingest/, the same for every source
and every way of receiving: Firehose's HTTP protocol, or Shoal reading through the one reading loop,
pools/reading.py), how records are read (a delivery mode of the AWS pipeline: Firehose push,
Kinesis pull, DynamoDB Streams pull, each with its provisioning steps in the one registry,
pools/aws/provisioning/registry.py) and the shapes on the wire (pools/ingest/records.py).

A pool's source type is its `kind` (DataPool.Kind); `of_pool` finds it. To add one — say another
database's change feed:

1. Write pools/sources/<name>.py with its columns and SQL, ending in `SOURCE = SourceType(...)`
   (pools/sources/dynamodb_stream.py is the example to copy).
2. Register it below in SOURCE_TYPES, and add its key to DataPool.Kind (a migration of choices only).
3. If it needs wizard or AWS steps that do not exist yet, add them to those registries by name.

docs/sources.md walks through it.
"""

from __future__ import annotations

from pools.sources import dynamodb_stream
from pools.sources.base import LoadFiles, SourceType

__all__ = [
    "DEFAULT",
    "SOURCE_TYPES",
    "LoadFiles",
    "SourceType",
    "all_types",
    "fed_by_source",
    "get",
    "kinds",
    "of_pool",
    "versions_by_change_time",
]

# Every source type, by key: the registrations.
SOURCE_TYPES: dict[str, SourceType] = {source.key: source for source in (dynamodb_stream.SOURCE,)}

DEFAULT = dynamodb_stream.SOURCE.key


def get(key: str) -> SourceType:
    """The source type with this key (KeyError when there is none)."""
    return SOURCE_TYPES[key]


def all_types() -> list[SourceType]:
    """Every source type, in registration order (as the wizard offers them)."""
    return list(SOURCE_TYPES.values())


def of_pool(pool) -> SourceType:
    """The source type that feeds a pool, by its `kind`; the default one for a pool of no source
    type (a pool fed by a Materialized View has columns of its own and asks only for DDL)."""
    return SOURCE_TYPES.get(getattr(pool, "kind", DEFAULT), SOURCE_TYPES[DEFAULT])


def kinds() -> list[str]:
    """The pool kinds fed by a source type (the pools views read), for queries."""
    return list(SOURCE_TYPES)


def fed_by_source(pool) -> bool:
    """Whether a pool's records come from a source type (not from a Materialized View)."""
    return getattr(pool, "kind", None) in SOURCE_TYPES


def versions_by_change_time(pool) -> bool:
    """Whether a view over this pool can order an item's versions by the time of each change."""
    return fed_by_source(pool) and SOURCE_TYPES[pool.kind].versions_by_change_time
