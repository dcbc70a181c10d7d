"""The company admin: which products a company counts and filters on, and Codat's statuses
shown as words with their meaning."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import CompanyFactory, CompanyProductFactory, ProductFactory, StaffFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:companies_company_changelist"


@pytest.fixture
def viewer(client):
    client.force_login(StaffFactory(role="viewer"))
    return client


def listed_companies(client, query: str = "") -> dict[str, int]:
    """The company list as {name: products column}."""
    response = client.get(reverse(CHANGELIST) + query)
    assert response.status_code == 200
    return {row.name: row._product_count for row in response.context["cl"].result_list}


def test_the_products_column_leaves_out_removed_products_and_failed_adds(viewer):
    company = CompanyFactory(name="Harbour Coffee")
    for status in ("active", "pending_add", "pending_removal", "removed", "failed"):
        CompanyProductFactory(company=company, status=status)

    assert listed_companies(viewer) == {"Harbour Coffee": 3}


def test_the_product_filter_finds_companies_holding_the_product_not_those_it_left(viewer):
    lending = ProductFactory(name="Lending")
    CompanyProductFactory(company=CompanyFactory(name="Holds it"), product=lending)
    CompanyProductFactory(
        company=CompanyFactory(name="Being added"), product=lending, status="pending_add"
    )
    CompanyProductFactory(
        company=CompanyFactory(name="Being removed"), product=lending, status="pending_removal"
    )
    CompanyProductFactory(company=CompanyFactory(name="Removed"), product=lending, status="removed")
    CompanyProductFactory(
        company=CompanyFactory(name="Add failed"), product=lending, status="failed"
    )
    # A second product, so the company's own count is not the filtered product's alone.
    CompanyProductFactory(company=CompanyFactory(name="Other product only"))

    listed = listed_companies(viewer, f"?product={lending.pk}")

    assert listed == {"Being added": 1, "Being removed": 1, "Holds it": 1}


def test_the_filtered_list_costs_the_same_queries_for_2_and_12_companies(viewer):
    lending = ProductFactory(name="Lending")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            listed_companies(viewer, f"?product={lending.pk}")
        return len(captured)

    for _ in range(2):
        CompanyProductFactory(product=lending)
    small = queries()
    for _ in range(10):
        CompanyProductFactory(product=lending)
        CompanyProductFactory(product=lending, status="removed")

    assert queries() == small
    assert len(listed_companies(viewer, f"?product={lending.pk}")) == 12


def test_the_product_list_counts_only_companies_that_hold_the_product(viewer):
    lending = ProductFactory(name="Lending")
    CompanyProductFactory(product=lending)
    CompanyProductFactory(product=lending, status="removed")
    CompanyProductFactory(product=lending, status="failed")

    response = viewer.get(reverse("admin:products_product_changelist"))

    assert [row._company_count for row in response.context["cl"].result_list] == [1]
