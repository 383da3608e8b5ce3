"""API keys' pool limits follow the pools, not their names: the names stored so far are mapped to
the pools that have them now; a name no pool has any more leaves its key limited to nothing."""

from django.db import migrations, models


def names_to_pools(apps, schema_editor):
    ApiKey = apps.get_model("api", "ApiKey")
    DataPool = apps.get_model("pools", "DataPool")
    for api_key in ApiKey.objects.exclude(pools=None):
        if not api_key.pools:
            continue
        api_key.limited = True
        api_key.save(update_fields=["limited"])
        api_key.limited_pools.set(DataPool.objects.filter(name__in=api_key.pools))


def pools_to_names(apps, schema_editor):
    ApiKey = apps.get_model("api", "ApiKey")
    for api_key in ApiKey.objects.filter(limited=True):
        names = sorted(api_key.limited_pools.values_list("name", flat=True))
        # A key limited to deleted pools only must not turn into a key for every pool.
        api_key.pools = names or ["(deleted)"]
        api_key.save(update_fields=["pools"])


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0001_initial"),
        ("pools", "0012_delivery_retention"),
    ]

    operations = [
        migrations.AddField(
            model_name="apikey",
            name="limited",
            field=models.BooleanField(
                default=False,
                help_text="Query keys: read only the pools below (none, once they are deleted).",
            ),
        ),
        migrations.AddField(
            model_name="apikey",
            name="limited_pools",
            field=models.ManyToManyField(
                blank=True,
                help_text="Query keys: the Data Pools it may read, when limited.",
                related_name="+",
                to="pools.datapool",
            ),
        ),
        migrations.RunPython(names_to_pools, pools_to_names),
        migrations.RemoveField(model_name="apikey", name="pools"),
    ]
