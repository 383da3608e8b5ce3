from django.apps import AppConfig


class PoolsConfig(AppConfig):
    name = "pools"
    verbose_name = "Data Pools"

    def ready(self) -> None:
        from console.worker_signals import redis_returned, warehouse_opened

        # A warehouse worker that starts (often the one the supervisor restarts after a crash)
        # loads at once what a dead worker held, rather than after LOAD_STALE_SECONDS.
        warehouse_opened.connect(_take_over_dead_claims, dispatch_uid="pools-dead-claims")
        # Deliveries landed while Redis was down were not queued: queue them as soon as it is back.
        redis_returned.connect(_queue_what_landed, dispatch_uid="pools-queue-what-landed")


def _take_over_dead_claims(sender, **_) -> None:
    from pools.loader import claims
    from pools.tasks import warehouse_load_pool

    for pool_id in claims.release_dead():
        warehouse_load_pool.enqueue(pool_id)


def _queue_what_landed(sender, **_) -> None:
    from pools.tasks import sweep_deliveries

    sweep_deliveries()  # what beat does every SHOAL_SWEEP_INTERVAL seconds, now
