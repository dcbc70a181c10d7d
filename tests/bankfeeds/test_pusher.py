"""Transactions in and the pusher's rules, on the database alone (Codat's side is in
test_flow.py): nothing here reaches a broker or Codat."""

from datetime import timedelta

import pytest
from django.utils import timezone

from bankfeeds.models import BankFeedPush, BankTransaction, MappingStatus, PushStatus
from bankfeeds.rules import BankFeedInvalid
from bankfeeds.services import (
    MAX_FAILED_PUSHES,
    TransactionConflict,
    account_push_next,
    push_outcome_observed,
    transactions_requeue,
    transactions_submit,
)
from operations.models import Operation, OperationKind
from tests.bankfeeds.helpers import mapped_account, transactions

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_celery")]


def _states(account) -> dict[str, int]:
    counts: dict[str, int] = {}
    for state in BankTransaction.objects.filter(account=account).values_list("state", flat=True):
        counts[state] = counts.get(state, 0) + 1
    return counts


def test_a_transaction_is_stored_once_and_a_changed_resubmission_is_a_conflict_storing_nothing():
    account = mapped_account()
    start = timezone.now() - timedelta(days=1)
    rows = transactions(3, start=start)
    first = transactions_submit(account=account, rows=rows)
    again = transactions_submit(account=account, rows=rows)
    assert (first.created, first.unchanged) == (3, 0)
    assert (again.created, again.unchanged) == (0, 3)
    changed = [*transactions(1, start=start, prefix="new"), {**rows[1], "amount": 999}]
    with pytest.raises(TransactionConflict) as caught:
        transactions_submit(account=account, rows=changed)
    assert caught.value.transaction_ids == ["t-1"]
    assert "t-1" in str(caught.value)
    assert BankTransaction.objects.filter(account=account).count() == 3  # "new-0" not stored


def test_a_bad_row_names_its_index_and_field_and_nothing_of_the_batch_is_stored():
    account = mapped_account(platform="gbol")  # Xero needs each balance
    rows = transactions(3, start=timezone.now() - timedelta(days=1), balance=100)
    del rows[2]["balance"]
    with pytest.raises(BankFeedInvalid) as caught:
        transactions_submit(account=account, rows=rows)
    assert caught.value.field == "transactions[2].balance"
    assert not BankTransaction.objects.filter(account=account).exists()


def test_the_sign_warning_is_kept_with_the_row():
    account = mapped_account()
    row = {**transactions(1, start=timezone.now() - timedelta(hours=1))[0], "amount": 10}
    result = transactions_submit(account=account, rows=[row])
    assert list(result.warnings) == ["t-0"]
    assert "Debit" in BankTransaction.objects.get(account=account).warnings[0]


def test_batches_hold_at_most_1000_in_date_order_with_one_push_in_flight_per_account():
    account = mapped_account()
    rows = transactions(2500, start=timezone.now() - timedelta(days=2))
    rows.reverse()  # submitted newest first: the pusher still sends oldest first
    transactions_submit(account=account, rows=rows)
    push = account_push_next(account_id=account.pk)
    assert push.transaction_count == 1000
    batch = list(push.transactions.order_by("date").values_list("transaction_id", flat=True))
    assert batch == [f"t-{n}" for n in range(1000)]
    assert account_push_next(account_id=account.pk) is None  # one in flight
    operation = Operation.objects.get(kind=OperationKind.PUSH_BANK_TRANSACTIONS)
    assert operation.parameters["bankFeedPush"] == push.pk
    assert operation.company == account.connection.company
    # Codat's answer, then its outcome: the next batch follows where this one ended.
    BankFeedPush.objects.filter(pk=push.pk).update(
        push_operation_key="0" * 8 + "-0000-0000-0000-" + "0" * 12
    )
    push.refresh_from_db()
    assert push_outcome_observed(push_operation_key=push.push_operation_key, status="Success")
    assert not push_outcome_observed(push_operation_key=push.push_operation_key, status="Failed")
    second = account_push_next(account_id=account.pk)
    assert second.first_date >= push.last_date
    assert _states(account) == {"synced": 1000, "in_push": 1000, "waiting": 500}


def test_what_can_never_be_pushed_is_set_aside_with_the_reason_and_the_future_waits():
    now = timezone.now()
    account = mapped_account(feed_start_days_ago=3)  # QuickBooks Online: 7 days back at most
    rows = [
        {"id": "too-old", "date": (now - timedelta(days=11)).isoformat(), "amount": 1},
        {"id": "ok", "date": (now - timedelta(days=9)).isoformat(), "amount": 1},
        {"id": "future", "date": (now + timedelta(days=1)).isoformat(), "amount": 1},
    ]
    transactions_submit(account=account, rows=rows)
    push = account_push_next(account_id=account.pk, now=now)
    assert list(push.transactions.values_list("transaction_id", flat=True)) == ["ok"]
    too_old = BankTransaction.objects.get(transaction_id="too-old")
    assert too_old.state == "set_aside"
    assert "7 days before the feed start date" in too_old.set_aside_reason
    assert BankTransaction.objects.get(transaction_id="future").state == "waiting"
    # Once pushed, nothing older than the latest may follow.
    BankFeedPush.objects.filter(pk=push.pk).update(status=PushStatus.SUCCESS)
    BankTransaction.objects.filter(push=push).update(state="synced")
    late = {"id": "late", "date": (now - timedelta(days=9, hours=1)).isoformat(), "amount": 1}
    transactions_submit(account=account, rows=[late])
    assert account_push_next(account_id=account.pk, now=now) is None
    late_row = BankTransaction.objects.get(transaction_id="late")
    assert late_row.state == "set_aside"
    assert "latest transaction already pushed" in late_row.set_aside_reason
    # An operator puts it back; the rule still holds.
    assert transactions_requeue(transaction_ids=[late_row.pk]) == 1
    account_push_next(account_id=account.pk, now=now)
    late_row.refresh_from_db()
    assert late_row.state == "set_aside"


def test_an_unmapped_account_waits_and_a_disconnected_one_sets_its_transactions_aside():
    account = mapped_account(mapping_status=MappingStatus.PENDING)
    transactions_submit(
        account=account, rows=transactions(2, start=timezone.now() - timedelta(hours=2))
    )
    assert account_push_next(account_id=account.pk) is None
    assert _states(account) == {"waiting": 2}
    account.mapping_status = MappingStatus.DISCONNECTED
    account.save()
    assert account_push_next(account_id=account.pk) is None
    assert _states(account) == {"set_aside": 2}
    assert (
        "disconnected" in BankTransaction.objects.filter(account=account).first().set_aside_reason
    )


def test_a_failed_or_timed_out_batch_goes_back_in_order_and_is_set_aside_after_repeated_failures():
    account = mapped_account()
    transactions_submit(
        account=account, rows=transactions(5, start=timezone.now() - timedelta(hours=2))
    )
    for attempt in range(MAX_FAILED_PUSHES):
        push = account_push_next(account_id=account.pk)
        assert push is not None and push.transaction_count == 5
        key = f"00000000-0000-0000-0000-{attempt:012d}"
        BankFeedPush.objects.filter(pk=push.pk).update(push_operation_key=key, status="pending")
        status = "TimedOut" if attempt == 0 else "Failed"
        assert push_outcome_observed(push_operation_key=key, status=status, error="rejected")
    assert account_push_next(account_id=account.pk) is None
    assert _states(account) == {"set_aside": 5}
    reason = BankTransaction.objects.filter(account=account).first().set_aside_reason
    assert f"{MAX_FAILED_PUSHES} pushes" in reason and "rejected" in reason
