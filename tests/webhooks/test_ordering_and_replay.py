"""Events arrive in any order and more than once; the mirror ends at the newest state."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from companies.models import Company, Connection, DataTypeStatus
from tests.webhooks.conftest import (
    connection_payload,
    deliver,
    event_body,
    read_payload,
    reference_company,
)
from webhooks.models import EventState, WebhookEvent
from webhooks.services import (
    webhook_event_process,
    webhook_events_replay,
    webhook_events_requeue_unprocessed,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


pytestmark = pytest.mark.django_db


def test_an_older_connection_event_never_overwrites_a_newer_one(client, webhook_secret):
    company_id, connection_id = uuid.uuid4(), uuid.uuid4()
    connected = event_body(
        "connection.connected", at(2), connection_payload(company_id, connection_id, "Linked")
    )
    created = event_body(
        "connection.created", at(1), connection_payload(company_id, connection_id, "PendingAuth")
    )
    disconnected = event_body(
        "connection.disconnected", at(3), connection_payload(company_id, connection_id, "Unlinked")
    )

    assert deliver(client, webhook_secret, connected).state == EventState.APPLIED
    assert deliver(client, webhook_secret, created).state == EventState.SUPERSEDED
    assert Connection.objects.get(codat_id=connection_id).status == "Linked"
    assert deliver(client, webhook_secret, disconnected).state == EventState.APPLIED

    connection = Connection.objects.get(codat_id=connection_id)
    assert (connection.status, connection.last_event_at) == ("Unlinked", at(3))


def test_an_event_older_than_an_api_answer_is_superseded_and_a_newer_one_applies(
    client, webhook_secret
):
    from companies.services import company_mirror_from_reference, connection_mirror_from_codat

    company_id, connection_id = uuid.uuid4(), uuid.uuid4()
    company = company_mirror_from_reference(
        codat_id=company_id, reference=reference_company(company_id)
    )
    # given: the reconciler read the connection from Codat's API at minute 5
    answer = connection_payload(company_id, connection_id, "Linked")["connection"]
    connection_mirror_from_codat(company=company, data=answer, observed_at=at(5))

    older = event_body(
        "connection.created", at(3), connection_payload(company_id, connection_id, "PendingAuth")
    )
    newer = event_body(
        "connection.disconnected", at(7), connection_payload(company_id, connection_id, "Unlinked")
    )

    assert deliver(client, webhook_secret, older).state == EventState.SUPERSEDED
    assert Connection.objects.get(codat_id=connection_id).status == "Linked"
    assert deliver(client, webhook_secret, newer).state == EventState.APPLIED
    connection = Connection.objects.get(codat_id=connection_id)
    assert (connection.status, connection.observed_at, connection.last_event_at) == (
        "Unlinked",
        at(7),
        at(7),
    )


def test_a_late_company_created_does_not_resurrect_a_deleted_company(client, webhook_secret):
    company_id = uuid.uuid4()
    company = {"id": str(company_id), "name": "Toft stores", "redirect": "https://x.test/"}
    deleted = event_body("company.deleted", at(5), company)
    created = event_body("company.created", at(1), company)

    deliver(client, webhook_secret, deleted)
    assert deliver(client, webhook_secret, created).state == EventState.SUPERSEDED

    assert Company.objects.get(codat_id=company_id).codat_deleted_at == at(5)


def test_records_last_changed_follows_records_modified_and_counts_the_first_read(
    client, webhook_secret
):
    company_id = uuid.uuid4()

    def read(minutes, modified, event_type="read.completed"):
        body = event_body(
            event_type, at(minutes), read_payload(company_id, ("invoices", modified, "Complete"))
        )
        return deliver(client, webhook_secret, body)

    def records_last_modified():
        row = DataTypeStatus.objects.get(company__codat_id=company_id, data_type="invoices")
        return row.records_last_modified_at

    # Codat: the first read after the first link always says recordsModified false.
    read(10, False, "read.completed.initial")
    assert records_last_modified() == at(10)
    read(20, False)
    assert records_last_modified() == at(10)
    read(30, True)
    assert records_last_modified() == at(30)
    # A late, older event that saw changes moves nothing back, and applies no status.
    assert read(25, True).state == EventState.SUPERSEDED
    assert records_last_modified() == at(30)


def test_a_failed_read_records_its_status_without_claiming_new_records(client, webhook_secret):
    company_id = uuid.uuid4()
    body = event_body(
        "lending.read.completed.unsuccessful",
        at(1),
        read_payload(company_id, ("invoices", False, "FetchError"), ("bills", True, "Complete")),
    )

    assert deliver(client, webhook_secret, body).state == EventState.APPLIED

    rows = {
        row.data_type_id: row for row in DataTypeStatus.objects.filter(company__codat_id=company_id)
    }
    assert rows["invoices"].current_status == "FetchError"
    assert rows["invoices"].records_last_modified_at is None
    assert rows["bills"].records_last_modified_at == at(1)


def test_an_unknown_event_type_is_stored_and_flagged_not_failed(client, webhook_secret):
    body = event_body("expenses.sync.successful", at(1), {"referenceCompany": {"id": "x"}})

    event = deliver(client, webhook_secret, body)

    assert event.state == EventState.UNKNOWN_TYPE
    assert "expenses.sync.successful" in event.state_reason


def test_a_signed_but_unprocessable_event_is_quarantined_and_changes_nothing(
    client, webhook_secret
):
    payload = connection_payload(uuid.uuid4(), uuid.uuid4(), "Exploded")

    event = deliver(client, webhook_secret, event_body("connection.connected", at(1), payload))

    assert event.state == EventState.QUARANTINED
    assert "unknown connection status 'Exploded'" in event.state_reason
    # The company the handler created before it gave up was rolled back with it.
    assert not Company.objects.exists()


def test_processing_an_event_twice_applies_it_once(client, webhook_secret):
    company_id = uuid.uuid4()
    body = event_body(
        "read.completed", at(1), read_payload(company_id, ("invoices", True, "Complete"))
    )
    event = deliver(client, webhook_secret, body)

    assert webhook_event_process(event_pk=event.pk) == EventState.APPLIED
    event.refresh_from_db()
    assert event.times_processed == 1


def test_replay_runs_events_again_idempotently_and_keeps_the_newest_state(client, webhook_secret):
    company_id, connection_id = uuid.uuid4(), uuid.uuid4()
    events = [
        deliver(client, webhook_secret, event_body(event_type, at(minutes), payload))
        for event_type, minutes, payload in (
            ("connection.created", 1, connection_payload(company_id, connection_id, "PendingAuth")),
            ("connection.connected", 2, connection_payload(company_id, connection_id, "Linked")),
            ("read.completed", 3, read_payload(company_id, ("invoices", True, "Complete"))),
        )
    ]
    before = Connection.objects.get(codat_id=connection_id)

    counts = webhook_events_replay(event_pks=[event.pk for event in events])

    after = Connection.objects.get(codat_id=connection_id)
    assert counts == {"applied": 2, "superseded": 1}
    assert (
        (after.status, after.last_event_at)
        == (before.status, before.last_event_at)
        == (
            "Linked",
            at(2),
        )
    )
    assert [e.times_processed for e in WebhookEvent.objects.order_by("pk")] == [2, 2, 2]
    assert Company.objects.count() == 1


def test_events_left_unprocessed_get_a_drain_again(client, webhook_secret, monkeypatch):
    from tests.webhooks.conftest import post_signed

    drains_requested = []
    monkeypatch.setattr(
        "webhooks.services.request_event_drain", lambda **options: drains_requested.append(options)
    )
    body = event_body("company.deleted", at(1), reference_company(uuid.uuid4()))
    post_signed(client, body, webhook_secret)
    event = WebhookEvent.objects.get()

    assert webhook_events_requeue_unprocessed() == 0
    later = event.received_at + timedelta(minutes=6)
    assert webhook_events_requeue_unprocessed(now=later) == 1
    # A lost message may have left the flag behind: the re-drive sends one regardless.
    assert drains_requested == [{"force": True}]
