"""Services for the product catalogue and the products assigned to companies."""

from django.db import transaction
from django.utils import timezone

from companies.services import product_reads_follow
from products.models import CompanyProduct, CompanyProductStatus, Product


@transaction.atomic
def company_products_mirror_from_codat(*, company, product_identifiers: list[str]) -> None:
    """Record the products Codat lists for a company.

    Products Codat lists are active; an active assignment Codat no longer lists was removed.
    Assignments in flight (being added or removed) are left to the worker that drives them.
    Identifiers unknown to the catalogue are ignored: the catalogue decides what the portal shows.
    """
    now = timezone.now()
    listed = set(product_identifiers)
    products = Product.objects.filter(identifier__in=listed)
    for product in products:
        assignment, created = CompanyProduct.objects.get_or_create(
            company=company,
            product=product,
            defaults={"status": CompanyProductStatus.ACTIVE, "status_changed_at": now},
        )
        if not created and assignment.status in (
            CompanyProductStatus.PENDING_ADD,
            CompanyProductStatus.REMOVED,
            CompanyProductStatus.FAILED,
        ):
            assignment.status = CompanyProductStatus.ACTIVE
            assignment.status_changed_at = now
            assignment.save(update_fields=["status", "status_changed_at"])
    CompanyProduct.objects.filter(company=company, status=CompanyProductStatus.ACTIVE).exclude(
        product__identifier__in=listed
    ).update(status=CompanyProductStatus.REMOVED, status_changed_at=now)
    product_reads_follow(CompanyProduct.objects.filter(company=company))


@transaction.atomic
def product_define(
    *,
    identifier: str,
    name: str,
    kind: str,
    description: str = "",
    schedule_kind: str = "none",
    schedule_time=None,
    data_types: list[str],
    optional_data_types: tuple[str, ...] = (),
) -> Product:
    """Create or update a catalogue product and set exactly its data types.

    The product's consent text is published again if what it shows changed (a new product,
    a name or a data type), so the consent pages only ever read it.
    """
    # Imported here: consent's services reach operations, which imports the catalogue.
    from consent.services import consent_text_publish
    from products.models import ProductDataType

    product = Product.objects.filter(identifier=identifier).first() or Product(
        identifier=identifier
    )
    product.name = name
    product.kind = kind
    product.description = description
    product.schedule_kind = schedule_kind
    product.schedule_time = schedule_time
    product.full_clean()
    product.save()
    ProductDataType.objects.filter(product=product).exclude(data_type_id__in=data_types).delete()
    for data_type in data_types:
        ProductDataType.objects.update_or_create(
            product=product,
            data_type_id=data_type,
            defaults={"is_optional": data_type in optional_data_types},
        )
    product_reads_follow(CompanyProduct.objects.filter(product=product))
    consent_text_publish(product=product)
    return product


@transaction.atomic
def company_products_erase(*, company) -> int:
    """An erased company's product assignments (GDPR erasure, companies/erasure.py)."""
    return CompanyProduct.objects.filter(company=company).delete()[0]
