from django.contrib.auth.management import create_permissions
from django.db import migrations


def create_staff_roles(apps, schema_editor):
    # Permissions are normally created after all migrations ran; create them now so the
    # groups can be given them on a fresh database.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    from core.roles import create_roles

    create_roles()


def remove_staff_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=("viewer", "operator", "admin")).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("companies", "0002_initial"),
        ("products", "0002_data_type_catalogue"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_staff_roles, remove_staff_roles)]
