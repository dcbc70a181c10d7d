from django.contrib.auth.management import create_permissions
from django.db import migrations


def create_compliance_role(apps, schema_editor):
    # As in 0001: the audit app's permissions must exist before the role is given them.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    from core.roles import create_roles

    create_roles()


def remove_compliance_role(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="compliance").delete()


class Migration(migrations.Migration):
    dependencies = [("core", "0001_staff_roles"), ("audit", "0001_audit_trail")]

    operations = [migrations.RunPython(create_compliance_role, remove_compliance_role)]
