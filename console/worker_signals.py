"""Celery worker hooks: a warehouse worker opens the warehouse at start (so that a locked chDB
folder is reported at once) and keeps a heartbeat in Redis while it runs."""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings

from console import folder_lock, warehouse_client
from console.warehouse import get_warehouse
from views_mv.tasks import detach_triggers, warehouse_check_view_types

log = logging.getLogger(__name__)
_stop = threading.Event()
_held: list[int] = []  # the warehouse folder's lock, held for the life of the process


def _consumes_warehouse(sender) -> bool:
    try:
        queues = sender.app.amqp.queues.consume_from or {}
        return "warehouse" in queues
    except AttributeError:
        return False


@worker_ready.connect
def start_heartbeat(sender=None, **_):
    if not _consumes_warehouse(sender):
        return
    try:
        _lock_warehouse_folder()
        warehouse = get_warehouse()  # fail loudly now if the warehouse cannot be opened
    except Exception as exc:
        log.critical("cannot open the warehouse: %s", exc)
        raise SystemExit(1) from exc  # not an Exception: Celery lets it stop the worker
    try:
        detach_triggers(warehouse)
    except Exception as exc:  # the worker still loads; the next start tries again
        log.error("could not detach the triggers of older Materialized Views: %s", exc)
    # Views made before their columns took the SELECT's declared types: list what narrows.
    try:
        warehouse_check_view_types.delay()
    except Exception as exc:  # the next start checks again
        log.error("could not queue the check of the views' column types: %s", exc)
    client = warehouse_client.redis_client()

    def beat() -> None:
        while not _stop.is_set():
            try:
                client.set(warehouse_client.HEARTBEAT_KEY, sender.hostname, ex=warehouse_client.HEARTBEAT_TTL)
            except Exception as exc:  # Redis restarts: keep trying
                log.warning("heartbeat: %s", exc)
            _stop.wait(warehouse_client.HEARTBEAT_TTL / 3)

    threading.Thread(target=beat, name="warehouse-heartbeat", daemon=True).start()


def _lock_warehouse_folder() -> None:
    """One process opens a chDB folder: say clearly who else has it (chDB's own refusal reads
    "Error initializing EmbeddedServer")."""
    if settings.WAREHOUSE.backend == "chdb" and not _held:
        _held.append(folder_lock.acquire(folder_lock.warehouse_lock(settings.WAREHOUSE.path)))


@worker_shutdown.connect
def stop_heartbeat(**_):
    _stop.set()
