"""Materialized Views (next issue: flatten change events into entity Data Pools)."""
