"""Codat's bank-feed webhooks, delivered signed to the endpoint, move the portal's pushes and
mappings (the polling fallback is in test_flow.py)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from bankfeeds.models import BankFeedPush, BankTransaction, MappingStatus, PushStatus
from bankfeeds.services import account_push_next, transactions_submit
from tests.bankfeeds.helpers import mapped_account, transactions
from tests.webhooks.conftest import deliver, event_body, new_secret, reference_company
from webhooks.models import EventState

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_celery")]


@pytest.fixture
def secret(settings):
    value = new_secret()
    settings.CODAT_WEBHOOK_SECRETS = [value]
    return value


def _push_in_flight(key: str):
    account = mapped_account()
    transactions_submit(
        account=account, rows=transactions(4, start=timezone.now() - timedelta(hours=1))
    )
    push = account_push_next(account_id=account.pk)
    BankFeedPush.objects.filter(pk=push.pk).update(push_operation_key=key, status="pending")
    return account, push


def _write_event(account, key: str, outcome: str, status: str, at: datetime) -> dict:
    return event_body(
        f"bankTransactions.write.{outcome}",
        at,
        {
            "id": key,
            "type": "Create",
            "referenceCompany": reference_company(account.connection.company.codat_id),
            "connectionId": str(account.connection.codat_id),
            "requestedOnDate": at.isoformat(),
            "completedOnDate": at.isoformat(),
            "status": status,
        },
    )


def test_a_successful_write_event_syncs_the_push_and_a_late_unsuccessful_one_changes_nothing(
    client, secret
):
    key = "5a3a4b9e-2f0e-4c1c-9d0a-1f2e3d4c5b6a"
    account, push = _push_in_flight(key)
    at = datetime.now(tz=UTC)
    event = deliver(client, secret, _write_event(account, key, "successful", "Success", at))
    assert event.state == EventState.APPLIED
    push.refresh_from_db()
    assert push.status == PushStatus.SUCCESS
    assert set(BankTransaction.objects.filter(account=account).values_list("state", flat=True)) == {
        "synced"
    }
    deliver(client, secret, _write_event(account, key, "unsuccessful", "Failed", at))
    push.refresh_from_db()
    assert push.status == PushStatus.SUCCESS


def test_an_unsuccessful_write_event_puts_the_batch_back_in_the_queue(client, secret):
    key = "6b3a4b9e-2f0e-4c1c-9d0a-1f2e3d4c5b6a"
    account, push = _push_in_flight(key)
    deliver(
        client, secret, _write_event(account, key, "unsuccessful", "TimedOut", datetime.now(tz=UTC))
    )
    push.refresh_from_db()
    assert push.status == PushStatus.TIMED_OUT
    rows = BankTransaction.objects.filter(account=account)
    assert set(rows.values_list("state", flat=True)) == {"waiting"}
    assert set(rows.values_list("failed_pushes", flat=True)) == {1}


def _source_account_event(account, event_type: str, status: str, at: datetime) -> dict:
    return event_body(
        event_type,
        at,
        {
            "connectionId": str(account.connection.codat_id),
            "referenceCompany": reference_company(account.connection.company.codat_id),
            "sourceAccount": {
                "id": account.account_id,
                "accountName": account.account_name,
                "currency": "GBP",
                "status": status,
                "feedStartDate": "2026-11-01T00:00:00Z",
            },
        },
    )


def test_source_account_events_move_the_mapping_and_an_older_one_does_not_undo_a_newer(
    client, secret
):
    account = mapped_account(mapping_status=MappingStatus.PENDING, feed_start_date=None)
    now = datetime.now(tz=UTC)
    deliver(
        client,
        secret,
        _source_account_event(account, "bankFeeds.sourceAccount.connected", "connected", now),
    )
    account.refresh_from_db()
    assert account.mapping_status == MappingStatus.CONNECTED
    assert account.feed_start_date == datetime(2026, 11, 1, tzinfo=UTC)
    older = now - timedelta(minutes=5)
    deliver(
        client,
        secret,
        _source_account_event(
            account, "bankFeeds.sourceAccount.disconnected", "disconnected", older
        ),
    )
    account.refresh_from_db()
    assert account.mapping_status == MappingStatus.CONNECTED
    deliver(
        client,
        secret,
        _source_account_event(
            account,
            "bankFeeds.sourceAccount.disconnected",
            "disconnected",
            now + timedelta(minutes=1),
        ),
    )
    account.refresh_from_db()
    assert account.mapping_status == MappingStatus.DISCONNECTED


def test_an_outcome_reported_before_the_push_was_answered_is_applied_when_the_answer_lands(
    client, secret
):
    # Codat can finish a push and send its write webhook before the worker has recorded the
    # push's answer: the event finds no push with that key yet.
    from bankfeeds import calls
    from operations.models import Operation, OperationKind

    key = "7c3a4b9e-2f0e-4c1c-9d0a-1f2e3d4c5b6a"
    account = mapped_account()
    transactions_submit(
        account=account, rows=transactions(4, start=timezone.now() - timedelta(hours=1))
    )
    push = account_push_next(account_id=account.pk)
    event = deliver(
        client, secret, _write_event(account, key, "successful", "Success", datetime.now(tz=UTC))
    )
    assert event.state == EventState.APPLIED
    push.refresh_from_db()
    assert push.status == PushStatus.SENDING  # nothing to move yet
    # when the push's answer (Pending) is recorded
    operation = Operation.objects.get(
        kind=OperationKind.PUSH_BANK_TRANSACTIONS, parameters__bankFeedPush=push.pk
    )
    calls.push_answered(operation, {"pushOperationKey": key, "status": "Pending"})
    # then the outcome already reported applies: no wait for the polling fallback
    push.refresh_from_db()
    assert push.status == PushStatus.SUCCESS
    assert set(BankTransaction.objects.filter(account=account).values_list("state", flat=True)) == {
        "synced"
    }
