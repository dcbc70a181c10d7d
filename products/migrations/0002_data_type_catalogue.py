from django.db import migrations


def seed_data_types(apps, schema_editor):
    from codat.data_types import CATEGORY_BY_DATA_TYPE
    from products.data_type_texts import DATA_TYPE_TEXTS

    DataType = apps.get_model("products", "DataType")
    for identifier, category in CATEGORY_BY_DATA_TYPE.items():
        name, description = DATA_TYPE_TEXTS[identifier]
        DataType.objects.update_or_create(
            identifier=identifier,
            defaults={"name": name, "category": category, "description": description},
        )


class Migration(migrations.Migration):
    dependencies = [("products", "0001_initial")]

    operations = [migrations.RunPython(seed_data_types, migrations.RunPython.noop)]
