"""console.sql_guard and console.tasks.execute against a chDB warehouse opened by the test process:
what a user's SQL may read, and the limits it runs under."""

from __future__ import annotations

import pytest

from console import sql_guard
from console.tasks import execute
from console.warehouse.chdb_backend import ChdbWarehouse
from pools import tables
from pools.models import DataPool
from tests.helpers.pools import GUIDE_STEP_4

POOL = "my_dynamo_orders_change_events"


@pytest.fixture(scope="module")
def warehouse(local_warehouse):
    local_warehouse.execute(tables.drop_table(POOL))
    local_warehouse.execute(tables.create_change_event_table(DataPool(name=POOL)))
    local_warehouse.execute(
        f"INSERT INTO {tables.table_ref(POOL)} (event_id, event_name, keys, new_image) VALUES "
        """('e1', 'INSERT', '{"order_id": {"S": "o1"}, "timestamp": {"S": "2024-05-08T13:20:37Z"}}',"""
        """ '{"taqueria": {"S": "La Paloma"}, "quantity": {"N": "3"}, "total_price": {"S": "12.50"}}')"""
    )
    local_warehouse.execute("CREATE DATABASE IF NOT EXISTS other")
    local_warehouse.execute("CREATE TABLE IF NOT EXISTS other.secret (x Int8) ENGINE = Memory")
    return local_warehouse


def run(warehouse, sql: str, max_rows: int = 100) -> dict:
    return execute(warehouse, sql, max_rows=max_rows)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (f"INSERT INTO {POOL} (event_id) VALUES ('x')", "INSERT is not allowed: the SQL Console is readonly"),
        (f"DROP TABLE {POOL}", "DROP is not allowed: the SQL Console is readonly"),
        ("CREATE TABLE t (x Int8) ENGINE = Memory", "CREATE is not allowed: the SQL Console is readonly"),
        (f"ALTER TABLE {POOL} DELETE WHERE 1", "ALTER is not allowed: the SQL Console is readonly"),
        (f"TRUNCATE TABLE {POOL}", "TRUNCATE is not allowed: the SQL Console is readonly"),
        ("SET max_execution_time = 3600", "SET is not allowed: the SQL Console is readonly"),
        ("USE system", "USE is not allowed"),
        ("SHOW TABLES", "SHOW TABLES is not available in the SQL Console"),
        ("SELECT * FROM system.tables", "system tables are not available in the SQL Console"),
        ("select name from `system`.users", "system tables are not available in the SQL Console"),
        ("DESCRIBE system.processes", "system tables are not available in the SQL Console"),
        ("SELECT * FROM information_schema.tables", "information_schema is not available"),
        ("SELECT * FROM INFORMATION_SCHEMA.COLUMNS", "information_schema is not available"),
        ("SELECT * FROM other.secret", "database other is not available in the SQL Console"),
        (f"SELECT * FROM {POOL} AS p JOIN other.secret AS s ON 1", "database other is not available"),
        ("SELECT 1 IN other.secret", "database other is not available"),
        ("EXISTS TABLE other.secret", "database other is not available"),
        ("SELECT * FROM (SELECT * FROM system.one)", "system tables are not available"),
        ("WITH t AS (SELECT * FROM system.one) SELECT * FROM t", "system tables are not available"),
        ("SELECT * FROM view(SELECT * FROM system.one)", "system tables are not available"),
        ("EXPLAIN SELECT * FROM system.tables", "system tables are not available"),
        ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "table function file() is not allowed"),
        ("SELECT * FROM FILE('/etc/passwd')", "table function FILE() is not allowed"),
        ("SELECT file('/etc/hostname')", "function file() is not allowed in the SQL Console"),
        ("SELECT * FROM url('http://127.0.0.1:1/x', CSV)", "table function url() is not allowed"),
        ("SELECT * FROM s3('http://127.0.0.1:1/b/k.csv')", "table function s3() is not allowed"),
        ("SELECT * FROM remote('127.0.0.1', system.one)", "table function remote() is not allowed"),
        ("SELECT * FROM mysql('h:3306', 'd', 't', 'u', 'p')", "table function mysql() is not allowed"),
        ("SELECT * FROM postgresql('h:5432', 'd', 't', 'u', 'p')", "table function postgresql() is not"),
        ("SELECT * FROM hdfs('hdfs://h/x', CSV)", "table function hdfs() is not allowed"),
        ("SELECT * FROM input('x Int8')", "table function input() is not allowed"),
        # readonly=1 lets these two through: they read other databases by name.
        ("SELECT * FROM merge('system', '^one$')", "table function merge() is not allowed"),
        ("SELECT * FROM cluster('default', system.one)", "table function cluster() is not allowed"),
        ("SELECT dictGet('d', 'x', 1)", "function dictGet() is not allowed"),
        ("SELECT joinGet('other.j', 'v', 1)", "function joinGet() is not allowed"),
        # Refused by what they reach (system.functions' categories), not by their names' prefix:
        # models, embedded dictionaries, AI providers, the server's own binary and settings.
        ("SELECT naiveBayesClassifier('m', 'text')", "function naiveBayesClassifier() is not allowed"),
        ("SELECT naiveBayesClassifierWithProb('m', 't')", "naiveBayesClassifierWithProb() is not allowed"),
        ("SELECT regionToName(toUInt32(1))", "function regionToName() is not allowed"),
        ("SELECT aiGenerate('say hi')", "function aiGenerate() is not allowed"),
        ("SELECT addressToSymbol(toUInt64(1))", "function addressToSymbol() is not allowed"),
        ("SELECT getServerSetting('path')", "function getServerSetting() is not allowed"),
        ("SELECT filesystemAvailable()", "function filesystemAvailable() is not allowed"),
        ("SELECT hasColumnInTable('system', 'one', 'dummy')", "function hasColumnInTable() is not"),
        ("SELECT showCertificate()", "function showCertificate() is not allowed"),
        ("SELECT sleepEachRow(3) FROM numbers(10)", "function sleepEachRow() is not allowed"),
        ("SELECT generateSerialID('s')", "function generateSerialID() is not allowed"),
        ("SELECT evalMLMethod(1, 2)", "function evalMLMethod() is not allowed"),
        # clickhouse-local writes INTO OUTFILE even in readonly mode.
        ("SELECT 1 INTO OUTFILE '/tmp/shoal-sql-guard.txt'", "FORMAT and INTO OUTFILE are not available"),
        ("SELECT 1 FORMAT CSV", "FORMAT and INTO OUTFILE are not available"),
        ("SELECT 1; SELECT 2", "Only one statement can run at a time"),
        (f"SELECT 1; DROP TABLE {POOL}", "Only one statement can run at a time"),
    ],
)
def test_it_refuses_what_reaches_outside_the_pools(warehouse, sql, message):
    result = run(warehouse, sql)
    assert message in result["error"], result
    assert "rows" not in result


def test_it_runs_the_guides_step_4_verbatim_with_the_pool_name(warehouse):
    result = run(warehouse, GUIDE_STEP_4)
    assert "error" not in result, result
    assert result["columns"][:3] == ["order_id", "timestamp", "deleted"]
    assert result["rows"][0][:3] == ["o1", "2024-05-08T13:20:37Z", False]
    assert result["truncated"] is False


@pytest.mark.parametrize(
    "sql",
    [
        f"SELECT count() FROM shoal.{POOL}",
        f"select event_name, count() from {POOL} group by event_name; ",
        "-- a comment naming system.tables\nSELECT 'system.tables', `system` FROM (SELECT 1 AS `system`)",
        f"DESCRIBE {POOL}",
        f"EXISTS TABLE {POOL}",
        f"SHOW CREATE TABLE {POOL}",
        f"EXPLAIN SELECT * FROM {POOL}",
        "SELECT number FROM numbers(3)",
        "SELECT * FROM generateRandom('a Int8', 1) LIMIT 2",
        "SELECT * FROM values('x Int8', 1, 2)",
        "WITH a AS (SELECT 1 AS x) SELECT * FROM a",
        "SELECT 1 UNION ALL SELECT 2 EXCEPT SELECT 3",
        "SELECT format('{} tacos', 3)",
        # what the guide, BI tools and clients use stays allowed
        "SELECT version(), currentDatabase(), timezone(), toTypeName(1), formatReadableSize(1024)",
        "SELECT CASE 1 WHEN 1 THEN 'a' ELSE 'b' END, if(1, 2, 3), multiIf(1, 2, 3)",
        "SELECT arrayMap(x -> x + 1, [1, 2]), tupleElement((1, 2), 1), 1 IN (1, 2)",
        "SELECT row_number() OVER (ORDER BY number), lagInFrame(number) OVER () FROM numbers(3)",
        "SELECT JSONExtractString('{\"a\": \"b\"}', 'a'), parseDateTimeBestEffort('2024-05-08')",
        "SELECT cityHash64('x'), toStartOfHour(now()), lower('A'), splitByChar(',', 'a,b')",
        "SELECT dictionary_word FROM (SELECT 1 AS dictionary_word)",  # a name, not a function
        "SELECT _CAST(42, 'UInt8')",  # what a bound {x:UInt8} parameter becomes
    ],
)
def test_it_runs_what_reads_only_the_pools(warehouse, sql):
    result = run(warehouse, sql)
    assert "error" not in result, result


def test_a_syntax_error_comes_back_as_clickhouse_words_it_with_its_position(warehouse):
    sql = f"SELECT 'é', event_id\nFROM {POOL}\nWHERE"
    result = run(warehouse, sql)
    assert result["code"] == 62
    assert result["error"].startswith("Syntax error: failed at position")
    assert "formatQuery" not in result["error"]  # the check's own wrapper does not show
    # ClickHouse counts bytes from 1; the console marks characters from 0.
    assert result["position"] == len(sql)
    assert run(warehouse, "SELEC 1")["position"] == 6


def test_a_second_statement_is_marked_where_it_starts(warehouse):
    result = run(warehouse, "SELECT 1; SELECT 2")
    assert result["position"] == 8 and result["code"] == 62


def test_the_time_limit_stops_a_long_query(local_warehouse):
    quick = ChdbWarehouse(local_warehouse.config, sql_max_seconds=1, sql_max_rows=5)
    quick.bootstrap()
    try:
        result = execute(quick, "SELECT count() FROM numbers(10000000000)", max_rows=5)
    finally:
        quick.close()
    assert result["error"].startswith("Timeout exceeded") and result["code"] == 159
    assert "SQL_MAX_EXECUTION_SECONDS" in result["error"]


def test_the_result_is_cut_to_the_row_limit(local_warehouse):
    small = ChdbWarehouse(local_warehouse.config, sql_max_seconds=5, sql_max_rows=5)
    small.bootstrap()
    try:
        cut = execute(small, "SELECT number FROM numbers(100000)", max_rows=5)
        whole = execute(small, "SELECT number FROM numbers(5)", max_rows=5)
    finally:
        small.close()
    assert cut["truncated"] is True and cut["rows"] == [[0], [1], [2], [3], [4]]
    assert whole["truncated"] is False and len(whole["rows"]) == 5


def test_a_query_cannot_lift_its_limits(warehouse):
    result = run(warehouse, "SELECT number FROM numbers(10) SETTINGS max_result_rows = 0, readonly = 0")
    assert "readonly" in result["error"].lower() and result["code"] == 164


def test_the_tree_is_read_strictly():
    lines = ["SelectWithUnionQuery (children 1)", " ExpressionList (children 1)", "  Literal UInt64_1"]
    assert sql_guard.parse_tree(lines).children[0].children[0].kind == "Literal"
    with pytest.raises(sql_guard.QueryRefused, match="could not check"):
        sql_guard.parse_tree(lines[:2])  # cut off
    with pytest.raises(sql_guard.QueryRefused, match="could not check"):
        sql_guard.parse_tree([*lines, " TableIdentifier system.tables"])  # a line out of place


def test_error_position_counts_characters():
    sql = "SELECT 'ñandú' FROM"
    assert sql_guard.error_position("Syntax error: failed at position 22 (end of query)", sql) == len(sql)
    assert sql_guard.error_position("Unknown table", sql) is None
