"""What else runs over a loaded batch, registered by the apps above pools.

The loader sits below the apps that build on a pool's rows (Materialized Views): it must run them
over every batch it inserts, yet not import them. An app registers a `BatchHook` in its
`AppConfig.ready()`, as Django's own registries work, and the loader calls what is registered:
`run` after the batch's rows are in the pool and accounted for, under the pool's gate; `finished`
inside the transaction that finishes the batch, to forget what `run` kept to make a retry
exactly-once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from console.warehouse import Warehouse


@dataclass(frozen=True)
class BatchHook:
    name: str
    # (warehouse, pool id, delivery ids, [first, last] received_at in ms, the batch's token) -> failures
    run: Callable[[Warehouse, int, list[int], list[int], str], int]
    # (the batch's token) -> None
    finished: Callable[[str], None]


_hooks: dict[str, BatchHook] = {}


def register(hook: BatchHook) -> None:
    """Register (or replace, by name: `ready()` may run twice in tests) a hook."""
    _hooks[hook.name] = hook


def registered() -> list[BatchHook]:
    return list(_hooks.values())


def run(warehouse: Warehouse, pool_id: int, delivery_ids: list[int], bounds: list[int], token: str) -> int:
    """Run every registered hook over a loaded batch; returns the failures they recorded."""
    return sum(hook.run(warehouse, pool_id, delivery_ids, bounds, token) for hook in _hooks.values())


def finished(token: str) -> None:
    for hook in _hooks.values():
        hook.finished(token)
