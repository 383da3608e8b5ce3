"""The catalogue's rewrite, wording by wording (console/access/api/catalog.py): each system table a
client reads becomes Shoal's rows, aliases and qualified columns kept working, literals untouched,
anything else left for the guard to refuse. What the rewritten SQL answers is checked against a
live Shoal by tests/test_clickhouse_driver_requests.py; here, what it becomes."""

from __future__ import annotations

import pytest

from console.access.api import catalog, keys
from pools.services import create_pool

pytestmark = pytest.mark.django_db


@pytest.fixture
def key():
    create_pool("mine_pool")
    create_pool("other_pool")
    return keys.create_key("bi", "query", pools=["mine_pool"]).api_key


def test_a_plain_question_reads_shoal_s_rows_not_the_system_table(key):
    sql = catalog.rewrite(key, "SELECT name FROM system.tables WHERE database = 'shoal'")
    assert "system." not in sql and "'mine_pool'" in sql and "'other_pool'" not in sql
    assert sql.startswith("SELECT name FROM (SELECT * FROM values(") and " AS __shoal_tables WHERE" in sql


def test_aliases_and_qualified_columns_keep_working(key):
    sql = catalog.rewrite(
        key,
        "SELECT t.name, d.engine FROM system.tables t JOIN system.databases d "
        "ON system.tables.database = system.databases.name WHERE t.name LIKE '%'",
    )
    assert "system." not in sql
    assert ") t JOIN (" in sql and ") d ON t.database = d.name" in sql


def test_a_qualified_column_without_an_alias_uses_shoal_s_alias(key):
    sql = catalog.rewrite(key, "SELECT system.columns.type FROM system.columns")
    assert sql.startswith("SELECT __shoal_columns.type FROM (") and sql.endswith(") AS __shoal_columns")


def test_a_keyword_after_the_table_is_not_taken_for_an_alias(key):
    for tail in ("WHERE 1", "LIMIT 1", "ORDER BY name", "EXCEPT SELECT 'x'", "FORMAT JSON", "SETTINGS a=1"):
        sql = catalog.rewrite(key, f"SELECT name FROM system.databases {tail}")
        assert f"AS __shoal_databases {tail}" in sql, sql


def test_strings_and_other_system_tables(key):
    # A literal naming a system table is left as it is.
    sql = catalog.rewrite(key, "SELECT 'system.tables' AS s, name FROM system.databases")
    assert sql.startswith("SELECT 'system.tables' AS s, name FROM (")
    # Any system table outside the four: no rewrite, so the guard refuses the query.
    assert catalog.rewrite(key, "SELECT * FROM system.tables, system.users") is None
    assert catalog.rewrite(key, "SELECT * FROM system.query_log") is None
    assert not catalog.mentions_system("SELECT 'system.tables'")


def test_describe_show_and_exists_answer_for_the_key_s_pools_only(key):
    assert "'mine_pool'" in catalog.statement_answer(key, 'SHOW TABLES FROM "shoal"')
    assert "'other_pool'" not in catalog.statement_answer(key, "SHOW TABLES")
    assert "event_name" in catalog.statement_answer(key, "DESCRIBE TABLE shoal.mine_pool")
    with pytest.raises(catalog.NoSuchTable):
        catalog.statement_answer(key, "DESC other_pool")
    assert "(0)" in catalog.statement_answer(key, "EXISTS TABLE other_pool")
    assert "(1)" in catalog.statement_answer(key, "EXISTS mine_pool")
