from django.apps import AppConfig


class ViewsMvConfig(AppConfig):
    name = "views_mv"
    verbose_name = "Materialized Views"

    def ready(self) -> None:
        # The loader runs each pool's views over every batch it loads, through its hook registry
        # (pools/loader/hooks.py): pools sits below views_mv and does not import it.
        from pools.loader import hooks
        from views_mv import apply

        hooks.register(hooks.BatchHook("materialized-views", run=apply.run_views, finished=apply.finished))
