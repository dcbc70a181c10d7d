"""The mirror services take Codat's JSON and write the mirror idempotently."""

import uuid

import pytest

from companies.codat_times import parse_codat_datetime
from companies.models import Company, Connection, DataTypeStatus
from companies.services import company_mirror_from_codat, data_status_mirror_from_codat
from products.models import CompanyProduct
from tests.factories import CompanyProductFactory, ProductFactory

pytestmark = pytest.mark.django_db


def codat_company(**overrides):
    company_id = str(uuid.uuid4())
    return {
        "id": company_id,
        "name": "Harbour Coffee Roasters",
        "description": "",
        "redirect": f"https://link.codat.io/company/{company_id}",
        "created": "2026-03-01T10:00:00Z",
        "lastSync": "2026-11-20T23:04:11.231Z",
        "products": [],
        "tags": {"segment": "retail"},
        "dataConnections": [],
        **overrides,
    }


def test_a_codat_company_becomes_a_mirror_row_and_a_second_delivery_changes_nothing():
    data = codat_company()
    first = company_mirror_from_codat(data=data)
    second = company_mirror_from_codat(data=data)
    assert first.pk == second.pk
    assert Company.objects.count() == 1
    assert second.last_sync.isoformat() == "2026-11-20T23:04:11.231000+00:00"
    assert second.tags == {"segment": "retail"}


def test_codat_products_become_active_assignments_and_missing_ones_removed():
    lending = ProductFactory(identifier="lending")
    feeds = ProductFactory(identifier="bank-feeds")
    data = codat_company(products=["lending", "bank-feeds", "not-in-our-catalogue"])
    company = company_mirror_from_codat(data=data)
    assert set(
        CompanyProduct.objects.filter(company=company, status="active").values_list(
            "product__identifier", flat=True
        )
    ) == {"lending", "bank-feeds"}

    company_mirror_from_codat(data={**data, "products": ["lending"]})
    assert CompanyProduct.objects.get(company=company, product=feeds).status == "removed"
    assert CompanyProduct.objects.get(company=company, product=lending).status == "active"


def test_an_assignment_being_removed_is_left_to_the_worker_driving_it():
    assignment = CompanyProductFactory(status="pending_removal")
    data = codat_company(
        id=str(assignment.company.codat_id), products=[assignment.product.identifier]
    )
    company_mirror_from_codat(data=data)
    assignment.refresh_from_db()
    assert assignment.status == "pending_removal"


def test_connections_arrive_with_the_company():
    connection_id = str(uuid.uuid4())
    company = company_mirror_from_codat(
        data=codat_company(
            dataConnections=[
                {
                    "id": connection_id,
                    "integrationKey": "gbol",
                    "platformName": "Xero",
                    "sourceType": "Accounting",
                    "status": "PendingAuth",
                    "linkUrl": "https://link-api.codat.io/companies/c/connections/k/start",
                    "created": "2026-03-01T10:05:00Z",
                }
            ]
        )
    )
    connection = Connection.objects.get(codat_id=connection_id)
    assert connection.company == company
    assert connection.status == "PendingAuth"


def test_data_status_keyed_by_data_type_is_applied_including_never_synced_types():
    company = company_mirror_from_codat(data=codat_company())
    sync_id = str(uuid.uuid4())
    data_status_mirror_from_codat(
        company=company,
        observed_at=company.observed_at,
        data_statuses={
            "invoices": {
                "dataType": "invoices",
                "currentStatus": "FetchError",
                "latestSyncId": sync_id,
            },
            "bills": {"dataType": "bills"},
        },
    )
    invoices = DataTypeStatus.objects.get(company=company, data_type="invoices")
    assert (invoices.current_status, str(invoices.latest_sync_id)) == ("FetchError", sync_id)
    assert invoices.last_successful_sync is None
    assert DataTypeStatus.objects.get(company=company, data_type="bills").current_status == ""


def test_codat_times_without_an_offset_are_read_as_utc():
    parsed = parse_codat_datetime("2026-11-20T23:00:00", field="lastSync")
    assert parsed.isoformat() == "2026-11-20T23:00:00+00:00"
