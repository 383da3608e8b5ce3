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
        _secure_data_folder()


def _secure_data_folder() -> None:
    """Tighten what an earlier version left readable by others in the data folder (once per
    process start). The sandboxed warehouse worker may not even list most of it: it skips this."""
    from django.conf import settings

    from console import data_folder

    if not settings.SECRETS_WITHHELD:
        data_folder.secure_and_say(settings.DATA_DIR)
