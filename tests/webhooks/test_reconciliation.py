"""Codat's data status against the ledger: reads whose read.completed never arrived."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from companies.models import DataTypeStatus
from tests.factories import CompanyFactory, CompanyProductFactory, ProductFactory
from webhooks.models import EventState, WebhookEvent
from webhooks.reconciliation import missed_events_reconcile_company

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def status(data_type, finished, sync_id=None):
    return {
        "dataType": data_type,
        "currentStatus": "Complete",
        "lastSuccessfulSync": finished.isoformat(),
        "latestSyncId": str(sync_id or uuid.uuid4()),
        "latestSuccessfulSyncId": str(sync_id or uuid.uuid4()),
    }


@pytest.mark.django_db
def test_a_read_codat_finished_without_a_read_event_in_the_ledger_is_marked_missed():
    company = CompanyFactory()
    product = ProductFactory(data_types=["invoices", "bills", "customers"])
    CompanyProductFactory(company=company, product=product)
    DataTypeStatus.objects.create(
        company=company, data_type_id="invoices", last_event_at=NOW - timedelta(hours=1)
    )
    bills_sync = uuid.uuid4()
    data_status = {
        # covered by the read event already applied
        "invoices": status("invoices", NOW - timedelta(hours=2)),
        # finished two hours ago, no event ever: missed
        "bills": status("bills", NOW - timedelta(hours=2), bills_sync),
        # finished a minute ago: Svix may still be delivering it
        "customers": status("customers", NOW - timedelta(minutes=1)),
        # not a data type of the company's products
        "chartOfAccounts": status("chartOfAccounts", NOW - timedelta(days=1)),
        "items": {"dataType": "items"},
    }

    assert missed_events_reconcile_company(company=company, data_statuses=data_status, now=NOW) == 1
    assert missed_events_reconcile_company(company=company, data_statuses=data_status, now=NOW) == 0

    missed = WebhookEvent.objects.get(state=EventState.MISSED)
    assert missed.webhook_id == f"missed:{company.codat_id}:bills:{bills_sync}"
    assert (missed.company, missed.event_type) == (company, "read.completed")
    assert "bills" in missed.state_reason
    # The mirror catches up from Codat's answer.
    assert DataTypeStatus.objects.get(company=company, data_type="bills").current_status == (
        "Complete"
    )


@pytest.mark.django_db
def test_a_read_is_still_found_missed_after_an_import_brought_its_status_from_the_api():
    from companies.services import (
        data_status_mirror_from_codat,
        data_type_status_mirror_from_read_event,
    )

    company = CompanyFactory()
    CompanyProductFactory(company=company, product=ProductFactory(data_types=["bills"]))
    data_type_status_mirror_from_read_event(
        company=company,
        data_type="bills",
        status="Complete",
        issues=[],
        records_modified=True,
        observed_at=NOW - timedelta(hours=3),
    )
    data_status = {"bills": status("bills", NOW - timedelta(hours=2))}
    # given: the mirror reconciler has already brought the newer read's status from Codat
    data_status_mirror_from_codat(
        company=company, data_statuses=data_status, observed_at=NOW - timedelta(hours=1)
    )

    # then: the read event that never came is still recorded as missed
    assert missed_events_reconcile_company(company=company, data_statuses=data_status, now=NOW) == 1


@pytest.mark.django_db
def test_the_periodic_job_asks_codat_for_each_company_with_products(
    monkeypatch, settings, redis_url
):
    from unittest import mock

    from codat.client import CodatClient
    from webhooks.tasks import reconcile_missed_events_task

    settings.REDIS_URL = redis_url
    company = CompanyFactory()
    CompanyProductFactory(company=company, product=ProductFactory(data_types=["bills"]))
    CompanyFactory()  # no products: not asked about
    client = mock.create_autospec(CodatClient, instance=True)
    client.get_data_status.return_value = {
        "bills": status("bills", datetime.now(tz=UTC) - timedelta(hours=3))
    }
    monkeypatch.setattr("webhooks.reconciliation.codat_client", lambda: client)

    assert reconcile_missed_events_task.apply().get() == 1
    client.get_data_status.assert_called_once_with(str(company.codat_id))


@pytest.mark.django_db
def test_successive_runs_go_round_the_companies_a_slice_at_a_time(monkeypatch, settings, redis_url):
    from unittest import mock

    import redis

    from codat.client import CodatClient
    from webhooks.reconciliation import RECONCILE_CURSOR_KEY
    from webhooks.tasks import reconcile_missed_events_task

    settings.REDIS_URL = redis_url
    redis.Redis.from_url(redis_url).delete(RECONCILE_CURSOR_KEY)
    companies = []
    for _ in range(3):
        company = CompanyFactory()
        CompanyProductFactory(company=company, product=ProductFactory(data_types=["bills"]))
        companies.append(str(company.codat_id))
    client = mock.create_autospec(CodatClient, instance=True)
    client.get_data_status.return_value = {}
    monkeypatch.setattr("webhooks.reconciliation.codat_client", lambda: client)

    for _ in range(3):
        reconcile_missed_events_task.apply(kwargs={"limit": 2})

    asked = [call.args[0] for call in client.get_data_status.call_args_list]
    assert asked == [
        companies[0],
        companies[1],
        companies[2],
        companies[0],
        companies[1],
        companies[2],
    ]
