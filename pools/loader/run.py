"""load_pool: a pool's landed deliveries loaded batch after batch, by one loader per pool and
process."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from console.warehouse import Warehouse, WarehouseError
from pools.loader.batch import load_batch
from pools.loader.claims import claim, release

log = logging.getLogger(__name__)


@dataclass
class LoadOutcome:
    deliveries: int = 0
    records: int = 0
    quarantined: int = 0
    failed: int = 0


# One loader per pool and process: a load task that finds one running leaves the work to it, so
# that what lands meanwhile is loaded together, in the next batch, rather than in small pieces.
_running: set[int] = set()
_wanted: set[int] = set()
_running_lock = threading.Lock()


def load_pool(warehouse: Warehouse, pool_id: int, *, batch: int | None = None) -> LoadOutcome:
    """Load every landed delivery of a pool, a batch at a time, until none is left.

    After a failure the loop stops: what failed waits for its back-off, instead of being
    retried at once against a warehouse that just refused it.
    """
    outcome = LoadOutcome()
    with _running_lock:
        _wanted.add(pool_id)
        if pool_id in _running:
            return outcome
        _running.add(pool_id)
    try:
        while True:
            with _running_lock:
                _wanted.discard(pool_id)
            _drain(warehouse, pool_id, batch, outcome)
            with _running_lock:
                if outcome.failed or pool_id not in _wanted:
                    _running.discard(pool_id)
                    return outcome
    except BaseException:
        with _running_lock:
            _running.discard(pool_id)
        raise


def _drain(warehouse: Warehouse, pool_id: int, limit: int | None, outcome: LoadOutcome) -> None:
    while True:
        token, ids = claim(pool_id, limit)
        if not ids:
            return
        try:
            results = load_batch(warehouse, ids, token)
        except Exception as exc:  # WarehouseError, or anything else: never leave it claimed
            if not isinstance(exc, WarehouseError):
                log.exception("load of deliveries %s failed", ids)
            for delivery_id in ids:
                release(delivery_id, token, str(exc))
            outcome.failed += len(ids)
            return
        for loaded, quarantined in results:
            outcome.deliveries += 1
            outcome.records += loaded
            outcome.quarantined += quarantined
        if len(results) < len(ids):
            outcome.failed += len(ids) - len(results)
            return
