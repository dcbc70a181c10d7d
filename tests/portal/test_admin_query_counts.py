"""List pages cost the same number of queries whatever the number of rows."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from companies.models import Company, Connection, DataTypeStatus
from products.models import CompanyProduct
from tests.factories import ProductFactory, StaffFactory

pytestmark = pytest.mark.django_db


def grow_to(count: int, product) -> None:
    """Bring the mirror to `count` companies, each with a connection, a product and a status."""
    existing = Company.objects.count()
    companies = Company.objects.bulk_create(
        Company(
            codat_id=uuid.uuid4(),
            name=f"Company {index:05d}",
            redirect="https://link.codat.io/company/x",
        )
        for index in range(existing, count)
    )
    Connection.objects.bulk_create(
        Connection(
            codat_id=uuid.uuid4(),
            company=company,
            platform_name="Xero",
            source_type="Accounting",
            status=("Linked", "PendingAuth", "Deauthorized", "Unlinked")[index % 4],
            link_url="https://link-api.codat.io/x",
        )
        for index, company in enumerate(companies)
    )
    CompanyProduct.objects.bulk_create(
        CompanyProduct(
            company=company, product=product, status="active", status_changed_at=timezone.now()
        )
        for company in companies
    )
    DataTypeStatus.objects.bulk_create(
        DataTypeStatus(company=company, data_type_id="invoices", current_status="Complete")
        for company in companies
    )


def queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:companies_company_changelist",
        "admin:companies_connection_changelist",
        "admin:companies_datatypestatus_changelist",
        "admin:products_companyproduct_changelist",
    ],
)
def test_list_pages_issue_the_same_queries_for_20_and_2000_companies(client, url_name):
    client.force_login(StaffFactory(role="viewer"))
    product = ProductFactory(data_types=["invoices"])
    url = reverse(url_name)

    grow_to(20, product)
    small = queries_for(client, url)
    grow_to(2000, product)
    large = queries_for(client, url)

    assert large == small
    assert Company.objects.count() == 2000


def test_the_company_list_shows_counts_from_the_annotated_query(client):
    client.force_login(StaffFactory(role="viewer"))
    grow_to(3, ProductFactory(data_types=["invoices"]))
    response = client.get(reverse("admin:companies_company_changelist"))
    rows = response.context["cl"].result_list
    assert [(row._connection_count, row._product_count) for row in rows] == [(1, 1)] * 3
    assert sum(row._linked_count for row in rows) == 1
