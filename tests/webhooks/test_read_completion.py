"""A completed read leaves its sync in the mirror: the data type's last successful sync, and the
last sync of its connection and company, whichever of the event and the import comes first."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from companies.codat_import import company_reconcile
from companies.codat_times import parse_codat_datetime
from companies.models import Company, Connection, DataTypeStatus
from companies.services import (
    company_mirror_from_reference,
    connection_mirror_from_codat,
    data_status_mirror_from_codat,
)
from tests.webhooks.conftest import (
    connection_payload,
    deliver,
    event_body,
    read_payload,
    reference_company,
)
from webhooks.models import EventState

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def read_of(company_id, connection_id, *entries) -> dict:
    """A read.completed payload whose entries were all read on one connection."""
    payload = read_payload(company_id, *entries)
    for entry in payload["dataTypes"]:
        entry["connectionId"] = str(connection_id)
    return payload


def status_of(company_id, data_type) -> DataTypeStatus:
    return DataTypeStatus.objects.get(company__codat_id=company_id, data_type=data_type)


@pytest.fixture
def linked_connection():
    """A company and its Linked connection, mirrored from an API answer at minute 5 that knew of
    no sync yet."""
    company_id, connection_id = uuid.uuid4(), uuid.uuid4()
    company = company_mirror_from_reference(
        codat_id=company_id, reference=reference_company(company_id)
    )
    answer = connection_payload(company_id, connection_id, "Linked")["connection"]
    connection_mirror_from_codat(company=company, data=answer, observed_at=at(5))
    return company_id, connection_id


@pytest.mark.django_db
def test_a_completed_read_sets_the_last_successful_sync_and_the_connections_last_sync(
    client, webhook_secret, linked_connection
):
    company_id, connection_id = linked_connection
    body = event_body(
        "read.completed",
        at(10),
        read_of(
            company_id,
            connection_id,
            ("invoices", True, "Complete"),
            ("bills", False, "FetchError"),
        ),
    )

    assert deliver(client, webhook_secret, body).state == EventState.APPLIED

    invoices = status_of(company_id, "invoices")
    assert (invoices.current_status, invoices.last_successful_sync) == ("Complete", at(10))
    bills = status_of(company_id, "bills")
    assert (bills.current_status, bills.last_successful_sync) == ("FetchError", None)
    assert Connection.objects.get(codat_id=connection_id).last_sync == at(10)
    assert Company.objects.get(codat_id=company_id).last_sync == at(10)


@pytest.mark.django_db
def test_a_custom_products_read_and_a_late_older_read_move_the_syncs_forward_only(
    client, webhook_secret, linked_connection
):
    company_id, connection_id = linked_connection

    def read(event_type, minutes, status):
        payload = read_of(company_id, connection_id, ("invoices", False, status))
        return deliver(client, webhook_secret, event_body(event_type, at(minutes), payload))

    read("cash-flow.read.completed", 20, "Complete")
    # A failed read is no sync, and a late event about an older one moves nothing back.
    read("cash-flow.read.completed.unsuccessful", 30, "FetchError")
    assert read("read.completed", 15, "Complete").state == EventState.SUPERSEDED

    assert status_of(company_id, "invoices").last_successful_sync == at(20)
    assert Connection.objects.get(codat_id=connection_id).last_sync == at(20)
    assert Company.objects.get(codat_id=company_id).last_sync == at(20)


@pytest.mark.django_db
def test_an_import_naming_the_sync_an_event_recorded_adds_its_id_and_hides_no_newer_one(
    client, webhook_secret, linked_connection
):
    company_id, connection_id = linked_connection
    company = Company.objects.get(codat_id=company_id)
    sync_id = uuid.uuid4()
    # given: the data-status answer was read at minute 30 and knows the sync of minute 25
    answer_time = at(25).isoformat().replace("+00:00", "Z")
    data_status_mirror_from_codat(
        company=company,
        data_statuses={
            "invoices": {
                "dataType": "invoices",
                "currentStatus": "Complete",
                "lastSuccessfulSync": answer_time,
                "latestSyncId": str(sync_id),
                "latestSuccessfulSyncId": str(sync_id),
            }
        },
        observed_at=at(30),
    )
    # when: the event of that same read arrives (generated at minute 25), then a newer event
    # (minute 40), then an import read before it (minute 35, still naming minute 25's sync)
    deliver(
        client,
        webhook_secret,
        event_body(
            "read.completed",
            at(25),
            read_of(company_id, connection_id, ("invoices", False, "Complete")),
        ),
    )
    invoices = status_of(company_id, "invoices")
    assert (invoices.last_successful_sync, invoices.latest_successful_sync_id) == (at(25), sync_id)
    deliver(
        client,
        webhook_secret,
        event_body(
            "read.completed",
            at(40),
            read_of(company_id, connection_id, ("invoices", False, "Complete")),
        ),
    )
    answer = connection_payload(company_id, connection_id, "Linked", lastSync=answer_time)
    connection_mirror_from_codat(company=company, data=answer["connection"], observed_at=at(35))

    # then: the newest sync stays, and the id of the older one is not shown beside it
    invoices = status_of(company_id, "invoices")
    assert (invoices.last_successful_sync, invoices.latest_successful_sync_id) == (at(40), None)
    assert Connection.objects.get(codat_id=connection_id).last_sync == at(40)


@pytest.mark.sandbox
@pytest.mark.django_db
def test_after_a_read_at_codat_the_event_and_the_import_leave_both_syncs_in_the_mirror(
    client, webhook_secret, sandbox, operations_env
):
    from codat.client import CodatClient

    # given: a company at Codat with a Linked connection, whose first read finishes
    codat = CodatClient(sandbox.base_url, sandbox.api_key, timeout=(3, 10))
    created = codat.create_company("Toft stores")
    connection = codat.create_connection(created["id"], "mqjo")
    codat.close()
    sandbox.authorize(created["id"], connection["id"])
    sandbox.advance(60)
    (event,) = sandbox.events("read.completed")

    # when: its read.completed arrives, then the import reads Codat
    assert deliver(client, webhook_secret, event).state == EventState.APPLIED
    company = Company.objects.get(codat_id=created["id"])
    company_reconcile(company=company)

    # then: the mirror holds Codat's own times and ids
    codat_status = sandbox.request("GET", f"/companies/{created['id']}/dataStatus").json()
    codat_connection = sandbox.request(
        "GET", f"/companies/{created['id']}/connections/{connection['id']}"
    ).json()
    invoices = status_of(created["id"], "invoices")
    assert invoices.current_status == "Complete"
    assert invoices.last_successful_sync == parse_codat_datetime(
        codat_status["invoices"]["lastSuccessfulSync"], field="lastSuccessfulSync"
    )
    assert (
        str(invoices.latest_successful_sync_id)
        == (codat_status["invoices"]["latestSuccessfulSyncId"])
    )
    assert Connection.objects.get(codat_id=connection["id"]).last_sync == parse_codat_datetime(
        codat_connection["lastSync"], field="lastSync"
    )
