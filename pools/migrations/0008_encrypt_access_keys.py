"""Pool access keys at rest: encrypted (and a SHA-256 digest for the endpoint), no longer in plaintext."""

import hashlib

from django.db import migrations, models

from console import encryption


def encrypt_keys(apps, schema_editor):
    DataPool = apps.get_model("pools", "DataPool")
    for pool in DataPool.objects.exclude(access_key="").only("pk", "access_key"):
        DataPool.objects.filter(pk=pool.pk).update(
            access_key_encrypted=encryption.encrypt(pool.access_key, encryption.POOL_ACCESS_KEY),
            access_key_digest=hashlib.sha256(pool.access_key.encode()).hexdigest(),
        )


def decrypt_keys(apps, schema_editor):
    DataPool = apps.get_model("pools", "DataPool")
    for pool in DataPool.objects.exclude(access_key_encrypted="").only("pk", "access_key_encrypted"):
        DataPool.objects.filter(pk=pool.pk).update(
            access_key=encryption.decrypt(pool.access_key_encrypted, encryption.POOL_ACCESS_KEY)
        )


class Migration(migrations.Migration):
    dependencies = [("pools", "0007_streaming_precision_microsecond")]

    operations = [
        migrations.AddField(
            model_name="datapool",
            name="access_key_encrypted",
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.AddField(
            model_name="datapool",
            name="access_key_digest",
            field=models.CharField(blank=True, editable=False, max_length=64),
        ),
        migrations.RunPython(encrypt_keys, decrypt_keys),
        migrations.RemoveField(model_name="datapool", name="access_key"),
    ]
