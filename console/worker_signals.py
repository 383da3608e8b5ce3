"""Celery worker hooks: a warehouse worker opens the warehouse at start (so that a locked chDB
folder is reported at once) and keeps a heartbeat in Redis while it runs."""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.dispatch import Signal

from console import admission, folder_lock, liveness, warehouse_client
from console.warehouse import get_warehouse

log = logging.getLogger(__name__)
_stop = threading.Event()
_held: list[int] = []  # the warehouse folder's lock, held for the life of the process

# Sent (with `warehouse=`) once a warehouse worker has opened the warehouse, before it takes work:
# the apps above connect to it in their AppConfig.ready() (views_mv detaches older views' triggers).
warehouse_opened = Signal()
# Sent by a warehouse worker when Redis answers again after its heartbeat found it down: what
# landed meanwhile could not be queued, and the apps above (pools) queue it at once.
redis_returned = Signal()


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
    admission.reset_gauges()  # nothing of this worker's runs or waits yet
    for receiver, outcome in warehouse_opened.send_robust(sender=None, warehouse=warehouse):
        if isinstance(outcome, Exception):  # the worker still loads; the next start tries again
            log.error("at the warehouse worker's start, %s failed: %s", receiver.__qualname__, outcome)
    client = warehouse_client.redis_client()
    try:
        liveness.beat(client)  # before the first task: the claims it makes carry its name
    except Exception as exc:
        log.warning("heartbeat: %s", exc)

    def beat() -> None:
        down = False
        while not _stop.is_set():
            try:
                client.set(warehouse_client.HEARTBEAT_KEY, sender.hostname, ex=warehouse_client.HEARTBEAT_TTL)
                liveness.beat(client)  # this process's own: its claims are freed at once when it dies
            except Exception as exc:  # Redis restarts: try again every half second
                if not down:
                    log.warning(
                        "heartbeat: Redis is unreachable (%s); trying every 0.5 s", type(exc).__name__
                    )
                down = True
                _stop.wait(0.5)
                continue
            if down:
                down = False
                log.warning("heartbeat: Redis answers again; queueing what landed meanwhile")
                for receiver, outcome in redis_returned.send_robust(sender=None):
                    if isinstance(outcome, Exception):
                        log.error("after Redis returned, %s failed: %s", receiver.__qualname__, outcome)
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
