"""Table settings derived from the wizard's answers (pools/table_settings.py): pure, no database."""

from __future__ import annotations

import pytest

from pools.table_settings import (
    APPEND_ONLY,
    MUTABLE,
    TableSettings,
    TableSettingsError,
    derive,
    key_columns,
    time_columns,
    version_columns,
)


def test_it_makes_a_merge_tree_sorted_by_time_for_append_only_change_events():
    settings = derive(APPEND_ONLY, unique=[], time_column="_received_at", filters=[], version=None)
    assert settings == TableSettings(
        engine="MergeTree",
        engine_label="MERGE_TREE",
        sorting_key="_received_at",
        partition_key="toYYYYMM(_received_at)",
        timestamp_column="_received_at",
        version_column="",
    )


def test_it_puts_the_filter_columns_before_the_time_column():
    settings = derive(
        APPEND_ONLY, unique=[], time_column="_received_at", filters=["table_name", "event_name"], version=None
    )
    assert settings.sorting_key == "table_name, event_name, _received_at"


def test_it_keeps_each_column_once_in_the_order_given():
    settings = derive(
        APPEND_ONLY,
        unique=[],
        time_column="_received_at",
        filters=["event_name", "_received_at", "event_name", "table_name"],
        version=None,
    )
    assert settings.sorting_key == "event_name, _received_at, table_name"


def test_it_sorts_by_tuple_when_nothing_is_chosen():
    settings = derive(APPEND_ONLY, unique=[], time_column=None, filters=[], version=None)
    assert settings.sorting_key == "tuple()"
    assert settings.partition_key == "" and settings.timestamp_column == ""


def test_it_ignores_the_mutable_only_answers_for_append_only_data():
    settings = derive(
        APPEND_ONLY,
        unique=["event_id"],
        time_column="_received_at",
        filters=[],
        version="approximate_creation_date_time",
    )
    assert settings.engine == "MergeTree" and settings.sorting_key == "_received_at"
    assert settings.version_column == ""


def test_it_makes_a_replacing_merge_tree_with_the_version_for_mutable_data():
    settings = derive(
        MUTABLE,
        unique=["event_id"],
        time_column="_received_at",
        filters=["table_name"],
        version="approximate_creation_date_time",
    )
    assert settings.engine == "ReplacingMergeTree(approximate_creation_date_time)"
    assert settings.engine_label == "REPLACING_MERGE_TREE"
    assert settings.sorting_key == "table_name, event_id"  # the time column is not part of the key
    # Replacement happens within a partition: a time column outside the key must not partition.
    assert settings.partition_key == ""
    assert settings.timestamp_column == "_received_at"
    assert settings.version_column == "approximate_creation_date_time"


def test_it_makes_a_replacing_merge_tree_without_version():
    settings = derive(MUTABLE, unique=["event_id"], time_column=None, filters=[], version=None)
    assert settings.engine == "ReplacingMergeTree"
    assert settings.sorting_key == "event_id"
    assert settings.partition_key == "" and settings.version_column == ""


def test_mutable_data_needs_unique_columns():
    with pytest.raises(ValueError, match="uniquely identify") as info:
        derive(MUTABLE, unique=[], time_column="_received_at", filters=["table_name"], version=None)
    assert info.value.field == "unique"


@pytest.mark.parametrize(
    "answers, field",
    [
        ({"filters": ["new_image"]}, "filters"),
        ({"unique": ["keys"]}, "unique"),
        ({"time_column": "user_identity"}, "time_column"),
    ],
)
def test_a_json_column_cannot_be_in_a_key(answers, field):
    base = {"unique": ["event_id"], "time_column": None, "filters": [], "version": None}
    with pytest.raises(ValueError, match="JSON") as info:
        derive(MUTABLE, **{**base, **answers})
    assert info.value.field == field


@pytest.mark.parametrize(
    "answers, field",
    [
        ({"filters": ["order_id"]}, "filters"),
        ({"unique": ["nope"]}, "unique"),
        ({"time_column": "timestamp"}, "time_column"),
        ({"version": "updated_at"}, "version"),
    ],
)
def test_unknown_columns_are_refused(answers, field):
    base = {"unique": ["event_id"], "time_column": None, "filters": [], "version": None}
    with pytest.raises(TableSettingsError, match="no column") as info:
        derive(MUTABLE, **{**base, **answers})
    assert info.value.field == field


def test_the_version_must_be_a_number_or_a_date():
    with pytest.raises(ValueError, match="version column must be"):
        derive(MUTABLE, unique=["event_id"], time_column=None, filters=[], version="table_name")


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="Append-only data or Mutable data"):
        derive("sometimes", unique=[], time_column=None, filters=[], version=None)


def test_it_works_with_the_columns_of_a_query():
    # As the Materialized View wizard will call it, with the columns of the guide's flattening query.
    columns = {
        "order_id": "String",
        "timestamp": "DateTime",
        "deleted": "Bool",
        "quantity": "Nullable(Int32)",
        "new_image": "JSON",
        "order date": "Date",
    }
    settings = derive(
        MUTABLE, unique=["order_id"], time_column="timestamp", filters=[], version=None, columns=columns
    )
    assert (settings.engine_label, settings.sorting_key, settings.timestamp_column) == (
        "REPLACING_MERGE_TREE",
        "order_id",
        "timestamp",
    )
    assert settings.partition_key == ""  # timestamp does not identify the record
    keyed = derive(
        MUTABLE,
        unique=["order_id", "timestamp"],
        time_column="timestamp",
        filters=[],
        version=None,
        columns=columns,
    )
    assert keyed.partition_key == "toYYYYMM(timestamp)"
    # Names that are not plain identifiers are quoted.
    odd = derive(
        APPEND_ONLY, unique=[], time_column="order date", filters=["order_id"], version=None, columns=columns
    )
    assert odd.sorting_key == "order_id, `order date`" and odd.partition_key == "toYYYYMM(`order date`)"
    with pytest.raises(ValueError, match="JSON"):
        derive(APPEND_ONLY, unique=[], time_column=None, filters=["new_image"], version=None, columns=columns)
    with pytest.raises(ValueError, match="no column"):
        derive(APPEND_ONLY, unique=[], time_column=None, filters=["event_id"], version=None, columns=columns)


def test_a_time_column_that_is_not_a_date_is_not_a_partition():
    columns = {"id": "String", "ts_ms": "Int64"}
    settings = derive(APPEND_ONLY, unique=[], time_column="ts_ms", filters=[], version=None, columns=columns)
    assert settings.sorting_key == "ts_ms" and settings.partition_key == ""


def test_the_wizard_offers_the_columns_that_fit_each_question():
    assert "_received_at" in key_columns() and "event_id" in key_columns()
    assert not {"keys", "new_image", "old_image", "user_identity"} & set(key_columns())
    assert time_columns() == ["_received_at"]
    assert "approximate_creation_date_time" in version_columns() and "table_name" not in version_columns()


def test_pool_fields_are_what_create_pool_takes():
    settings = derive(APPEND_ONLY, unique=[], time_column="_received_at", filters=["event_id"], version=None)
    assert settings.pool_fields() == {
        "engine": "MergeTree",
        "sorting_key": "event_id, _received_at",
        "partition_key": "toYYYYMM(_received_at)",
        "timestamp_column": "_received_at",
        "version_column": "",
    }


def test_the_version_question_says_which_answer_is_the_guide_s_and_why_shoal_recommends_the_other():
    from views_mv.forms import TableForm

    form = TableForm(columns={"order_id": "String"}, dynamodb_source=True)
    labels = dict(form.fields["version"].choices)
    assert "recommended" in labels[""] and "whatever order" in labels[""]
    assert (
        "what the guide does by leaving this empty" in labels["arrival"]
        and "delivered late" in labels["arrival"]
    )
