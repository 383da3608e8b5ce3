"""The warehouse: the only code that talks to chDB or a ClickHouse server.

    from console.warehouse import get_warehouse
    get_warehouse().query("SELECT count() FROM orders")

Only processes on the `warehouse` Celery queue call get_warehouse(); the web process asks them
through console.warehouse_client.
"""

from __future__ import annotations

import threading

from django.conf import settings

from console.warehouse.base import Result, Warehouse, WarehouseError, loggable

__all__ = ["Result", "Warehouse", "WarehouseError", "get_warehouse", "loggable", "reset_warehouse"]

_lock = threading.Lock()
_instance: Warehouse | None = None


def get_warehouse() -> Warehouse:
    global _instance
    with _lock:
        if _instance is None:
            config = settings.WAREHOUSE
            if config.backend == "chdb":
                from console.warehouse.chdb_backend import ChdbWarehouse

                _instance = ChdbWarehouse(config)
            else:
                from console.warehouse.clickhouse_backend import ClickHouseWarehouse

                _instance = ClickHouseWarehouse(config)
            _instance.bootstrap()
        return _instance


def reset_warehouse() -> None:
    global _instance
    with _lock:
        if _instance is not None:
            _instance.close()
        _instance = None
