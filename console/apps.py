from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_groups(sender, **kwargs) -> None:
    from django.contrib.auth.models import Permission

    from console import roles

    try:
        roles.ensure_groups()
    except Permission.DoesNotExist:  # this signal came for an app before console: it comes again
        return


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Console"

    def ready(self) -> None:
        from console import worker_signals  # noqa: F401  (connects Celery worker signals)

        post_migrate.connect(_ensure_groups, dispatch_uid="shoal-role-groups")
