from django.apps import AppConfig


class AwsConfig(AppConfig):
    name = "pools.aws"
    label = "aws"
    verbose_name = "AWS pipelines"
