"""The company admin: which products a company counts and filters on, and Codat's statuses
shown as words with their meaning."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from codat.data_types import ALL_DATA_TYPES
from companies.models import CONNECTION_STATUS_HELP, DATASET_STATUS_HELP, DatasetStatus
from tests.factories import (
    CompanyFactory,
    CompanyProductFactory,
    ConnectionFactory,
    DataTypeStatusFactory,
    ProductFactory,
    PullOperationFactory,
    StaffFactory,
)

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


def status_cell(label: str, meaning) -> str:
    return f'<span title="{escape(str(meaning))}">{label}</span>'


def test_every_data_type_status_shows_its_label_with_its_meaning_as_a_tooltip(viewer):
    company = CompanyFactory()
    for data_type, status in zip(ALL_DATA_TYPES, DatasetStatus, strict=False):
        DataTypeStatusFactory(company=company, data_type_id=data_type, current_status=status)
    DataTypeStatusFactory(company=company, data_type_id=ALL_DATA_TYPES[-1], current_status="")

    content = viewer.get(reverse("admin:companies_datatypestatus_changelist")).content.decode()

    for status in DatasetStatus:
        assert status_cell(status.label, DATASET_STATUS_HELP[status]) in content
    assert ">Never read</span>" in content
    assert "Fetcherror" not in content and "Mapqueued" not in content


def test_pulls_and_connections_show_labels_and_meanings_in_lists_and_on_the_company_page(viewer):
    company = CompanyFactory()
    ConnectionFactory(company=company, status="PendingAuth")
    PullOperationFactory(company=company, status="MapQueued", progress=40, is_completed=False)
    pending_auth = status_cell("Pending authorisation", CONNECTION_STATUS_HELP["PendingAuth"])
    map_queued = status_cell("Waiting to map", DATASET_STATUS_HELP["MapQueued"])

    connections = viewer.get(reverse("admin:companies_connection_changelist")).content.decode()
    pulls = viewer.get(reverse("admin:companies_pulloperation_changelist")).content.decode()
    company_page = viewer.get(
        reverse("admin:companies_company_change", args=[company.pk])
    ).content.decode()

    assert pending_auth in connections
    assert map_queued in pulls
    assert map_queued in company_page
    # The company page's header shows the connection's status as a badge, its meaning as the
    # tooltip.
    meaning = escape(str(CONNECTION_STATUS_HELP["PendingAuth"]))
    assert f'title="{meaning}">Pending authorisation</span>' in company_page
    # The list filters name the statuses by label too.
    assert "Mapqueued" not in pulls and "Waiting to map</a>" in pulls


def test_a_pull_operation_page_says_what_its_status_means(viewer):
    pull = PullOperationFactory(status="AuthError", is_errored=True)

    content = viewer.get(
        reverse("admin:companies_pulloperation_change", args=[pull.pk])
    ).content.decode()

    assert "Authorisation failed" in content
    assert escape(str(DATASET_STATUS_HELP["AuthError"])) in content


def test_the_search_finds_companies_by_name_codat_id_and_platform_once_each(viewer):
    harbour = CompanyFactory(name="Harbour Coffee")
    kestrel = CompanyFactory(name="Kestrel Logistics")
    for _ in range(2):
        ConnectionFactory(company=kestrel, platform_name="Sage Business Cloud")
    CompanyFactory(name="Lantern Books")

    assert set(listed_companies(viewer, "?q=harbour")) == {"Harbour Coffee"}
    assert set(listed_companies(viewer, f"?q={kestrel.codat_id}")) == {"Kestrel Logistics"}
    # Two matching connections, one row.
    response = viewer.get(reverse(CHANGELIST) + "?q=sage")
    assert [row.name for row in response.context["cl"].result_list] == ["Kestrel Logistics"]
    assert set(listed_companies(viewer, f"?q={harbour.codat_id}"[:-4])) == set()
