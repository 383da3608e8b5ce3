"""The source seam: every source type is complete and its steps exist where they are named."""

from __future__ import annotations

import dataclasses

from pools import sources, table_settings, tables
from pools.aws.models import Pipeline
from pools.aws.provisioning import registry
from pools.models import DataPool
from pools.sources import dynamodb_stream
from pools.wizard import WIZARD


def test_it_finds_a_pools_source_type_by_its_kind():
    assert sources.of_pool(DataPool(name="p", kind=DataPool.Kind.DYNAMODB)) is dynamodb_stream.SOURCE
    assert sources.get(sources.DEFAULT) is dynamodb_stream.SOURCE
    assert [s.key for s in sources.all_types()] == list(sources.SOURCE_TYPES)


def test_each_source_type_is_a_pool_kind_with_steps_that_exist():
    kinds = set(DataPool.Kind.values)
    for source in sources.all_types():
        assert source.key in kinds
        assert set(source.wizard_steps) <= set(WIZARD.by_name), source.key
        assert set(source.aws_steps) <= set(registry.STEPS), source.key
        names = [name for name, _, _ in source.columns]
        assert set(source.preview_columns) <= set(names)


def test_the_pool_table_is_made_of_its_source_columns():
    pool = DataPool(name="orders_events")
    ddl = tables.create_table(pool)
    for name, type_, _ in dynamodb_stream.SOURCE.columns:
        assert f"`{name}` {type_}" in ddl
    assert dynamodb_stream.SOURCE.column_types() == table_settings.DEFAULT_COLUMNS
    assert [row[0] for row in tables.schema_rows(pool)] == [
        n for n, _, _ in dynamodb_stream.CHANGE_EVENT_COLUMNS
    ]


def test_its_load_select_reads_the_files_it_is_given():
    sql = dynamodb_stream.SOURCE.load_select([("a.json", 7, 1000)], None, None)
    assert "'a.json'" in sql and "[7]" in sql and "WHERE reason = ''" in sql


def test_a_pipelines_steps_are_its_source_types_in_its_order():
    source = dynamodb_stream.SOURCE
    assert registry.keys("provision", source) == source.aws_steps
    assert (
        registry.pipeline_keys(Pipeline(pool=DataPool(name="p", kind=source.key)), "provision")
        == source.aws_steps
    )
    # Teardown stops the delivery before the streaming, and removes only what provisioning made.
    teardown = registry.keys("teardown", source)
    assert sorted(teardown) == sorted(source.aws_steps) and teardown.index("firehose") < teardown.index(
        "stream"
    )
    fewer = dataclasses.replace(source, aws_steps=("stream", "firehose"))
    assert registry.keys("provision", fewer) == ("stream", "firehose")
    assert registry.keys("teardown", fewer) == ("firehose", "stream")


def test_what_a_source_allows_is_declared_by_its_type_not_tested_by_kind(monkeypatch):
    """A source whose records carry no change time (say a plain Kinesis stream of events) gets
    views that keep arrival order; a pool fed by a view is no source at all."""
    from views_mv import targets, versioning

    plain = dataclasses.replace(dynamodb_stream.SOURCE, key="events", versions_by_change_time=False)
    monkeypatch.setitem(sources.SOURCE_TYPES, "events", plain)
    timed = dataclasses.replace(dynamodb_stream.SOURCE, key="streams", versions_by_change_time=True)
    monkeypatch.setitem(sources.SOURCE_TYPES, "streams", timed)
    events = DataPool(name="events", kind="events")
    cdc = DataPool(name="cdc", kind=DataPool.Kind.DYNAMODB)
    entity = DataPool(name="entity", kind=DataPool.Kind.MATERIALIZED)
    assert sources.fed_by_source(events) and not sources.fed_by_source(entity)
    # The endpoint, the pool page and the Connect wizard ask the registry too, not the kind.
    assert events.receives_deliveries and cdc.receives_deliveries and not entity.receives_deliveries
    assert "events" in sources.kinds() and DataPool.Kind.MATERIALIZED not in sources.kinds()
    assert [sources.versions_by_change_time(p) for p in (cdc, events, entity)] == [True, False, False]

    def engine_of(pool) -> str:
        _, engine, _ = targets.describe_target(
            pool, {"order_id": "String", "qty": "Int32"}, mutable=True, unique=["order_id"],
            time_column=None, filters=[], version=None,
        )  # fmt: skip
        return engine

    assert versioning.VERSION_COLUMN in engine_of(cdc)  # the change's time orders versions
    assert versioning.VERSION_COLUMN not in engine_of(events)  # arrival order
    assert versioning.VERSION_COLUMN in engine_of(DataPool(name="s", kind="streams"))  # not by kind
