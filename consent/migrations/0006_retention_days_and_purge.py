"""Consent texts state their retention in days too, and the append-only trigger lets exactly one
delete through: the retention run's, of the consent evidence of an erased company.

Existing texts get 2,190 days (six years, the limitation period for claims in England and Wales,
within which the evidence may be needed). Adding the column with that default fills the existing
rows without an UPDATE, so the append-only trigger is not involved.

The retention run (consent.services.consent_evidence_retention_run) sets the transaction-local
setting `consent.retention_purge` to 'on' before its delete; nothing else sets it, and being
transaction-local it ends with that transaction. Every UPDATE, and every other DELETE, is refused
as before.
"""

from django.db import migrations, models

PURGE_ALLOWED = """
CREATE OR REPLACE FUNCTION consent_refuse_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'consent_consentevent'
       AND current_setting('consent.retention_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'consent evidence is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

REFUSE_ALL = """
CREATE OR REPLACE FUNCTION consent_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'consent evidence is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def allow_retention_purge(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PURGE_ALLOWED, params=None)


def refuse_every_delete(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REFUSE_ALL, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0005_current_consent"),
    ]

    operations = [
        migrations.AddField(
            model_name="consenttext",
            name="retention_days",
            field=models.PositiveIntegerField(
                default=2190,
                help_text="Days the consent evidence is kept after the company is erased.",
            ),
        ),
        migrations.RunPython(allow_retention_purge, refuse_every_delete),
    ]
