"""Shoal's HTTP API: API keys, the query API (/api/v1/sql), a read-only subset of ClickHouse's
HTTP interface (/clickhouse) and the management API (/api/v1/…)."""
