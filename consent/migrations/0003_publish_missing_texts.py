"""Give every product that has no consent text its first version.

Texts are now published when the catalogue changes, and the consent pages only read them; a
product made before that needs a version to read. Purpose and retention start as the service
starts them: the product's description (or name) and the default retention.
"""

from django.conf import settings
from django.db import migrations

from consent.texts import content_hash, text_document


def publish_missing_texts(apps, schema_editor):
    Product = apps.get_model("products", "Product")
    ProductDataType = apps.get_model("products", "ProductDataType")
    ConsentText = apps.get_model("consent", "ConsentText")
    for product in Product.objects.filter(consent_texts__isnull=True).order_by("pk"):
        links = ProductDataType.objects.filter(product=product).select_related("data_type")
        purpose = product.description or product.name
        retention = settings.CONSENT_DEFAULT_RETENTION
        content = text_document(
            identifier=product.identifier,
            name=product.name,
            data_types=[
                {
                    "identifier": link.data_type_id,
                    "name": link.data_type.name,
                    "description": link.data_type.description,
                    "optional": link.is_optional,
                }
                for link in links
            ],
            purpose=purpose,
            retention=retention,
        )
        ConsentText.objects.create(
            product=product,
            version=1,
            purpose=purpose,
            retention=retention,
            content=content,
            content_hash=content_hash(content),
        )


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0002_append_only_triggers"),
        ("products", "0002_data_type_catalogue"),
    ]

    operations = [migrations.RunPython(publish_missing_texts, migrations.RunPython.noop)]
