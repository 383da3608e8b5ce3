"""Sessions moved from the database to Redis (SESSION_ENGINE): delete the ones stored before, so
that no live session key is left in a database file the warehouse worker can open."""

from __future__ import annotations

from django.db import migrations


def forget_sessions(apps, schema_editor):
    apps.get_model("sessions", "Session").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("console", "0002_roles"), ("sessions", "0001_initial")]

    operations = [migrations.RunPython(forget_sessions, migrations.RunPython.noop)]
