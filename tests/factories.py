"""factory_boy factories for the portal's models."""

import uuid

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from companies.models import Company, Connection, DataTypeStatus, PullOperation
from products.models import CompanyProduct, Product, ProductDataType


class CompanyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Company

    codat_id = factory.LazyFunction(uuid.uuid4)
    name = factory.Sequence(lambda n: f"Company {n} Ltd")
    redirect = factory.LazyAttribute(
        lambda company: f"https://link.codat.io/company/{company.codat_id}"
    )


class ConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Connection

    codat_id = factory.LazyFunction(uuid.uuid4)
    company = factory.SubFactory(CompanyFactory)
    integration_key = "gbol"
    platform_name = "Xero"
    source_type = "Accounting"
    status = "Linked"
    link_url = factory.LazyAttribute(
        lambda connection: (
            f"https://link-api.codat.io/companies/{connection.company.codat_id}"
            f"/connections/{connection.codat_id}/start"
        )
    )


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product
        skip_postgeneration_save = True

    identifier = factory.Sequence(lambda n: f"product-{n}")
    name = factory.Sequence(lambda n: f"Product {n}")
    kind = "custom"

    @factory.post_generation
    def data_types(product, create, extracted, **kwargs):
        for identifier in extracted or ():
            ProductDataType.objects.create(product=product, data_type_id=identifier)


class CompanyProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CompanyProduct
        skip_postgeneration_save = True

    company = factory.SubFactory(CompanyFactory)
    product = factory.SubFactory(ProductFactory)
    status = "active"
    status_changed_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def reads_followed(assignment, create, extracted, **kwargs):
        """As every service that changes an assignment's status does: its product's reads of
        each data type get a row."""
        if create:
            from companies.services import product_reads_follow

            product_reads_follow(CompanyProduct.objects.filter(pk=assignment.pk))


def _catalogued(identifier: str) -> str:
    """The data type's id, its catalogue row put back first: a transactional test that ran
    earlier truncated the migrated catalogue."""
    from tests.operations.helpers import ensure_data_types

    ensure_data_types([identifier])
    return identifier


class DataTypeStatusFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DataTypeStatus

    company = factory.SubFactory(CompanyFactory)
    data_type_id = factory.LazyFunction(lambda: _catalogued("invoices"))
    current_status = "Complete"


class PullOperationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PullOperation

    codat_id = factory.LazyFunction(uuid.uuid4)
    company = factory.SubFactory(CompanyFactory)
    data_type_id = factory.LazyFunction(lambda: _catalogued("invoices"))
    status = "Complete"
    requested = factory.LazyFunction(timezone.now)
    progress = 100
    is_completed = True


class StaffFactory(factory.django.DjangoModelFactory):
    """A staff member in one of the roles: viewer, operator or admin."""

    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    is_staff = True

    @factory.post_generation
    def role(user, create, extracted, **kwargs):
        if extracted:
            if not Group.objects.filter(name=extracted).exists():
                # A transactional test run earlier flushed the roles the migration made.
                from core.roles import create_roles

                create_roles()
            user.groups.add(Group.objects.get(name=extracted))


def _current_consent_text(product):
    from consent.services import consent_text_publish

    return consent_text_publish(product=product)


class ConsentEventFactory(factory.django.DjangoModelFactory):
    """A consent event; by default a grant, through a link, of every data type of the product.

    For other apps' tests that need consent to exist: `ConsentEventFactory(company=c, product=p)`.
    """

    class Meta:
        model = "consent.ConsentEvent"

    company = factory.SubFactory(CompanyFactory)
    product = factory.SubFactory(ProductFactory)
    action = "grant"
    channel = "link"
    token_hash = factory.LazyFunction(lambda: uuid.uuid4().hex * 2)
    text = factory.LazyAttribute(lambda event: _current_consent_text(event.product))
    text_hash = factory.LazyAttribute(lambda event: event.text.content_hash)
    data_types = factory.LazyAttribute(
        lambda event: sorted(
            event.product.product_data_types.values_list("data_type_id", flat=True)
        )
    )

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        # Written around consent's services (any time, any order): the stored current consent
        # is folded again from the company's log, as its migration builds it.
        from consent.services import current_consent_refold

        event = super()._create(model_class, *args, **kwargs)
        current_consent_refold(company_ids=[event.company_id])
        return event


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "operations.Job"

    kind = "add_product"
    product = factory.SubFactory(ProductFactory)
    description = factory.LazyAttribute(lambda job: f"Add {job.product.name} to some companies")


class OperationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "operations.Operation"

    kind = "add_product"
    company = factory.SubFactory(CompanyFactory)
    product = factory.SubFactory(ProductFactory)
    state = "pending"
    next_attempt_at = factory.LazyFunction(timezone.now)
    dedupe_key = factory.Sequence(lambda n: f"factory:{n}")
