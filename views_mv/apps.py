from django.apps import AppConfig


class ViewsMvConfig(AppConfig):
    name = "views_mv"
    verbose_name = "Materialized Views"
