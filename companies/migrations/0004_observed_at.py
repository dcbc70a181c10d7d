"""Every mirror row records when its newest fact was observed (observed_at).

Company, Connection and DataTypeStatus start from the webhook time they already kept
(last_event_at), which stays the time of the newest webhook only.
"""

from django.db import migrations, models
from django.db.models import F


def observed_at_from_last_event_at(apps, schema_editor):
    for name in ("Company", "Connection", "DataTypeStatus"):
        model = apps.get_model("companies", name)
        model.objects.filter(last_event_at__isnull=False).update(observed_at=F("last_event_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("companies", "0003_webhook_event_ordering"),
    ]

    operations = [
        migrations.AddField(
            model_name="company",
            name="observed_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="last observed"),
        ),
        migrations.AddField(
            model_name="connection",
            name="observed_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="last observed"),
        ),
        migrations.AddField(
            model_name="datatypestatus",
            name="observed_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="last observed"),
        ),
        migrations.AddField(
            model_name="pulloperation",
            name="observed_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="last observed"),
        ),
        migrations.RunPython(observed_at_from_last_event_at, migrations.RunPython.noop),
    ]
