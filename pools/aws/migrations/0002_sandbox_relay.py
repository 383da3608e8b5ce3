import django.db.models.deletion
from django.db import migrations, models


def to_sandbox_relay(apps, schema_editor) -> None:
    Pipeline = apps.get_model("aws", "Pipeline")
    SandboxRelay = apps.get_model("aws", "SandboxRelay")
    rows = Pipeline.objects.values_list("pk", "destination_emulated", "relay_checkpoint")
    SandboxRelay.objects.bulk_create(
        SandboxRelay(pipeline_id=pk, emulated=emulated, checkpoint=checkpoint or {})
        for pk, emulated, checkpoint in rows
        if emulated or checkpoint
    )


def to_pipeline(apps, schema_editor) -> None:
    Pipeline = apps.get_model("aws", "Pipeline")
    SandboxRelay = apps.get_model("aws", "SandboxRelay")
    for relay in SandboxRelay.objects.all():
        Pipeline.objects.filter(pk=relay.pipeline_id).update(
            destination_emulated=relay.emulated, relay_checkpoint=relay.checkpoint
        )


class Migration(migrations.Migration):
    """The sandbox relay's fields (demo only) leave Pipeline for a record of their own, their values
    copied across (and back, when migrating backwards)."""

    dependencies = [
        ("aws", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="SandboxRelay",
            fields=[
                (
                    "pipeline",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="sandbox_relay",
                        serialize=False,
                        to="aws.pipeline",
                    ),
                ),
                (
                    "emulated",
                    models.BooleanField(
                        default=False, help_text="The emulator cannot stream; the sandbox relay stands in."
                    ),
                ),
                ("checkpoint", models.JSONField(blank=True, default=dict)),
            ],
            options={"verbose_name": "sandbox relay"},
        ),
        migrations.RunPython(to_sandbox_relay, to_pipeline),
        migrations.RemoveField(model_name="pipeline", name="destination_emulated"),
        migrations.RemoveField(model_name="pipeline", name="relay_checkpoint"),
    ]
