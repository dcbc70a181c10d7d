"""An older observation never overwrites a newer one, for each mirrored model, whichever way
the facts came (a webhook event's generatedDate, or the moment an API answer arrived)."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from companies.models import Company, Connection, DataTypeStatus, PullOperation
from companies.services import (
    company_deletion_mirror_from_event,
    company_mirror_from_codat,
    company_mirror_from_event,
    company_mirror_from_reference,
    company_products_mirror_from_event,
    connection_mirror_from_codat,
    connection_mirror_from_event,
    data_status_mirror_from_codat,
    data_type_status_mirror_from_read_event,
    pull_operation_mirror_from_codat,
)
from products.models import CompanyProduct
from tests.factories import CompanyFactory, ProductFactory

pytestmark = pytest.mark.django_db

OLDER = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
NEWER = OLDER + timedelta(minutes=5)


def codat_company(codat_id, name: str, **extra) -> dict:
    return {
        "id": str(codat_id),
        "name": name,
        "redirect": f"https://link.codat.io/company/{codat_id}",
        **extra,
    }


def codat_connection(connection_id, status: str) -> dict:
    return {
        "id": str(connection_id),
        "integrationKey": "gbol",
        "platformName": "Xero",
        "sourceType": "Accounting",
        "status": status,
        "linkUrl": "https://link-api.codat.io/companies/c/connections/k/start",
    }


def test_an_older_company_answer_leaves_the_newer_event_state_and_products_alone():
    ProductFactory(identifier="lending")
    codat_id = uuid.uuid4()
    newer = codat_company(codat_id, "Toft stores", products=["lending"])
    assert company_mirror_from_event(data=newer, observed_at=NEWER)

    company = company_mirror_from_codat(
        data=codat_company(codat_id, "Toft", products=[]), observed_at=OLDER
    )

    company.refresh_from_db()
    assert (company.name, company.observed_at, company.last_event_at) == (
        "Toft stores",
        NEWER,
        NEWER,
    )
    assert CompanyProduct.objects.get(company=company).status == "active"
    # An older event is superseded the same way.
    assert not company_mirror_from_event(data=codat_company(codat_id, "Toft"), observed_at=OLDER)
    assert not company_products_mirror_from_event(
        codat_id=codat_id, data={"name": "Toft"}, product_identifiers=[], observed_at=OLDER
    )
    assert not company_deletion_mirror_from_event(codat_id=codat_id, data={}, observed_at=OLDER)
    company.refresh_from_db()
    assert (company.name, company.codat_deleted_at) == ("Toft stores", None)
    assert CompanyProduct.objects.get(company=company).status == "active"


def test_a_newer_company_answer_applies_over_an_older_event_and_keeps_the_event_time():
    codat_id = uuid.uuid4()
    company_mirror_from_event(data=codat_company(codat_id, "Toft"), observed_at=OLDER)

    company_mirror_from_codat(data=codat_company(codat_id, "Toft stores"), observed_at=NEWER)

    company = Company.objects.get(codat_id=codat_id)
    assert (company.name, company.observed_at, company.last_event_at) == (
        "Toft stores",
        NEWER,
        OLDER,
    )


def test_a_company_created_from_a_reference_records_no_observation():
    codat_id = uuid.uuid4()
    company_mirror_from_reference(codat_id=codat_id, reference={"id": str(codat_id), "name": "T"})

    # so an event about the company itself, however old, still applies
    assert company_mirror_from_event(data=codat_company(codat_id, "Toft"), observed_at=OLDER)
    assert Company.objects.get(codat_id=codat_id).name == "Toft"


def test_an_older_connection_answer_does_not_overwrite_a_newer_event():
    company = CompanyFactory()
    connection_id = uuid.uuid4()
    assert connection_mirror_from_event(
        company=company, data=codat_connection(connection_id, "Linked"), observed_at=NEWER
    )

    connection_mirror_from_codat(
        company=company, data=codat_connection(connection_id, "PendingAuth"), observed_at=OLDER
    )
    older_event_applied = connection_mirror_from_event(
        company=company,
        data=codat_connection(connection_id, "PendingAuth"),
        observed_at=OLDER,
        deleted=True,
    )

    connection = Connection.objects.get(codat_id=connection_id)
    assert not older_event_applied
    assert (connection.status, connection.codat_deleted_at, connection.observed_at) == (
        "Linked",
        None,
        NEWER,
    )


def test_an_older_data_status_answer_does_not_overwrite_a_newer_read_event():
    company = CompanyFactory()
    assert data_type_status_mirror_from_read_event(
        company=company,
        data_type="invoices",
        status="Complete",
        issues=[],
        records_modified=True,
        observed_at=NEWER,
    )

    data_status_mirror_from_codat(
        company=company,
        data_statuses={"invoices": {"dataType": "invoices", "currentStatus": "Queued"}},
        observed_at=OLDER,
    )
    older_event_applied = data_type_status_mirror_from_read_event(
        company=company,
        data_type="invoices",
        status="FetchError",
        issues=[{"type": "error"}],
        records_modified=False,
        observed_at=OLDER,
    )

    row = DataTypeStatus.objects.get(company=company, data_type="invoices")
    assert not older_event_applied
    assert (row.current_status, row.last_read_issues, row.observed_at) == ("Complete", [], NEWER)
    assert row.records_last_modified_at == NEWER


def test_a_data_status_answer_moves_the_observation_but_not_the_webhook_time():
    company = CompanyFactory()
    data_type_status_mirror_from_read_event(
        company=company,
        data_type="invoices",
        status="Complete",
        issues=[],
        records_modified=True,
        observed_at=OLDER,
    )

    data_status_mirror_from_codat(
        company=company,
        data_statuses={"invoices": {"dataType": "invoices", "currentStatus": "Queued"}},
        observed_at=NEWER,
    )

    row = DataTypeStatus.objects.get(company=company, data_type="invoices")
    assert (row.current_status, row.observed_at, row.last_event_at) == ("Queued", NEWER, OLDER)


def test_an_older_pull_history_answer_does_not_overwrite_a_newer_one():
    company = CompanyFactory()
    pull_id = str(uuid.uuid4())

    def pull(status: str, progress: int) -> dict:
        return {
            "id": pull_id,
            "dataType": "invoices",
            "status": status,
            "requested": "2026-03-01T08:59:00Z",
            "progress": progress,
            "isCompleted": status == "Complete",
        }

    pull_operation_mirror_from_codat(company=company, data=pull("Complete", 100), observed_at=NEWER)
    pull_operation_mirror_from_codat(company=company, data=pull("Fetching", 40), observed_at=OLDER)

    row = PullOperation.objects.get(codat_id=pull_id)
    assert (row.status, row.progress, row.is_completed, row.observed_at) == (
        "Complete",
        100,
        True,
        NEWER,
    )
