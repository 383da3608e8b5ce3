from django.apps import AppConfig


class ViewsMvConfig(AppConfig):
    name = "views_mv"
    verbose_name = "Materialized Views"

    def ready(self) -> None:
        # The loader runs each pool's views over every batch it loads, through its hook registry
        # (pools/loader/hooks.py): pools sits below views_mv and does not import it.
        from console.worker_signals import warehouse_opened
        from pools.loader import hooks
        from views_mv import apply

        hooks.register(hooks.BatchHook("materialized-views", run=apply.run_views, finished=apply.finished))
        # Views are no longer triggers: a warehouse worker drops those older versions made, at start.
        warehouse_opened.connect(_detach_triggers, dispatch_uid="views-mv-detach-triggers")
        # Views made before their columns took the SELECT's declared types: list what narrows.
        warehouse_opened.connect(_check_view_types, dispatch_uid="views-mv-check-view-types")


def _detach_triggers(sender, warehouse, **_) -> None:
    from views_mv.tasks import detach_triggers

    detach_triggers(warehouse)


def _check_view_types(sender, **_) -> None:
    from views_mv.tasks import warehouse_check_view_types

    warehouse_check_view_types.enqueue()  # refused: logged; the next start checks again
