"""The audit trail is append-only in the database too, as the consent evidence is (consent
migration 0002): on PostgreSQL a trigger refuses every UPDATE and DELETE. TRUNCATE is left to
the test runner, which empties tables with it."""

from django.db import migrations

CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def create_trigger(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # params=None: the body's % placeholders are RAISE's, not the driver's.
    schema_editor.execute(CREATE_FUNCTION, params=None)
    schema_editor.execute(
        "CREATE TRIGGER audit_auditentry_append_only BEFORE UPDATE OR DELETE ON "
        "audit_auditentry FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();"
    )


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP TRIGGER IF EXISTS audit_auditentry_append_only ON audit_auditentry;")
    schema_editor.execute("DROP FUNCTION IF EXISTS audit_refuse_change();")


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_audit_trail")]

    operations = [migrations.RunPython(create_trigger, drop_trigger)]
