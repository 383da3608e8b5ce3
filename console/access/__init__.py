"""The top floor: how people and programs reach what Shoal holds — the HTTP API (`api/`, its own
app), the SQL Console pages, health checks and Prometheus metrics, the first-admin setup page.

It sits above pools and views_mv and may import them; nothing below imports it (the import
contracts in pyproject.toml, checked by `make lint`).
"""
