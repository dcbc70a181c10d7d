"""Onboarding to synced transactions against the sandbox over HTTP; the operation rows run in
this process (operations.worker.operation_run), nothing goes to a broker."""

from datetime import timedelta

import pytest
from django.utils import timezone

from bankfeeds import calls
from bankfeeds.models import (
    AccountState,
    BankFeedConnection,
    BankFeedPush,
    BankTransaction,
    ConnectionState,
    MappingStatus,
    PushStatus,
)
from bankfeeds.services import (
    account_push_next,
    bank_feed_company_onboard,
    bank_feed_link_refresh,
    bank_feed_mapping_read,
    pushes_round,
    source_account_create,
    source_account_delete,
    source_account_update,
    transactions_submit,
)
from companies.models import Connection
from operations.models import Operation, OperationKind, OperationState
from tests.bankfeeds.helpers import ACCOUNT, run_due_operations, transactions
from tests.operations.helpers import sandbox_client

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_celery"),
]


def _onboarded(sandbox, platform="hcws", name="Harbour Bank Customer"):
    operation = bank_feed_company_onboard(name=name, platform=platform)
    run_due_operations()
    operation.refresh_from_db()
    assert operation.state == OperationState.SUCCEEDED
    return BankFeedConnection.objects.get(company=operation.company)


def _mapped(sandbox, connection, account_id, feed_start, target="target-gbp-1"):
    """The SMB maps the account (what Codat's UI or the mapping page does), to an existing
    target account or (target None) a new one, then the portal reads the mapping."""
    client = sandbox_client(sandbox)
    answer = client.set_bank_account_mapping(
        str(connection.company.codat_id),
        str(connection.codat_id),
        account_id,
        target_account_id=target,
        feed_start_date=feed_start.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    client.close()
    if target is None:
        assert answer["status"] == "connecting"
        sandbox.advance(10)  # the platform creates the account on the sandbox's clock
    else:
        assert answer["status"] == "connected"
    bank_feed_mapping_read(connection=connection)
    run_due_operations()


def _sandbox_pushes(sandbox, company) -> list[dict]:
    body = sandbox.request(
        "GET", f"/companies/{company.codat_id}/push", params={"pageSize": 5000}
    ).json()
    return sorted(body["results"], key=lambda push: push["requestedOnUtc"])


def test_onboarding_creates_the_company_then_its_bank_feed_connection_and_the_accounts(
    sandbox, operations_env
):
    # given a new company for QuickBooks Online bank feeds
    connection = _onboarded(sandbox)
    # then the connection exists at Codat with the SMB's link, and the mirror has it
    assert connection.state == ConnectionState.CREATED
    assert connection.link_url.startswith("http")
    assert Connection.objects.filter(codat_id=connection.codat_id).exists()
    # when the bank creates an account
    account = source_account_create(connection=connection, data={"id": "acc-1", **ACCOUNT})
    assert account.state == AccountState.CREATING
    run_due_operations()
    account.refresh_from_db()
    # then Codat has it, pending until the SMB maps it
    assert account.state == AccountState.ACTIVE
    assert account.mapping_status == MappingStatus.PENDING
    client = sandbox_client(sandbox)
    remote = client.list_source_accounts(str(connection.company.codat_id), str(connection.codat_id))
    assert [(a["id"], a["accountType"], a["currency"]) for a in remote] == [
        ("acc-1", "checking", "GBP")
    ]
    # a fresh link on demand (QuickBooks Online's code lasts an hour)
    first_link = connection.link_url
    assert "otp=" in first_link
    bank_feed_link_refresh(connection=connection)
    assert run_due_operations() == ["succeeded"]
    connection.refresh_from_db()
    assert "otp=" in connection.link_url and connection.link_url != first_link
    # an update is sent whole (Codat's update body is the v1 account)
    source_account_update(account=account, data={**ACCOUNT, "accountName": "Renamed"})
    assert run_due_operations() == ["succeeded"]
    account.refresh_from_db()
    assert account.state == AccountState.ACTIVE
    remote = client.list_source_accounts(str(connection.company.codat_id), str(connection.codat_id))
    assert remote[0]["accountName"] == "Renamed"
    # deleting stops the feed at Codat
    source_account_delete(account=account)
    run_due_operations()
    account.refresh_from_db()
    assert account.state == AccountState.DELETED
    assert (
        client.list_source_accounts(str(connection.company.codat_id), str(connection.codat_id))
        == []
    )
    client.close()


def test_an_account_breaking_a_v2_rule_sends_nothing(sandbox, operations_env):
    from bankfeeds.rules import BankFeedInvalid

    connection = _onboarded(sandbox)
    with pytest.raises(BankFeedInvalid) as caught:
        source_account_create(connection=connection, data={"id": "a", **ACCOUNT, "sortCode": ""})
    assert caught.value.field == "sortCode"
    assert not Operation.objects.filter(kind=OperationKind.CREATE_SOURCE_ACCOUNT).exists()


def test_transactions_reach_the_sandbox_once_each_in_date_order_in_batches_of_1000(
    sandbox, operations_env, settings
):
    # given a mapped account and 2,300 transactions
    sandbox.control("PUT", "push", {"delaySeconds": 0, "outcome": "Success"})
    settings.BANK_FEEDS_POLL_PENDING_SECONDS = 0
    connection = _onboarded(sandbox)
    account = source_account_create(connection=connection, data={"id": "acc-1", **ACCOUNT})
    run_due_operations()
    now = timezone.now()
    _mapped(sandbox, connection, "acc-1", now - timedelta(days=2))
    account.refresh_from_db()
    assert account.mapping_status == MappingStatus.CONNECTED
    rows = transactions(2300, start=now - timedelta(days=4), step=timedelta(minutes=2))
    transactions_submit(account=account, rows=rows)
    # when the pusher and the polls run until nothing is left
    for _ in range(20):
        account_push_next(account_id=account.pk)
        run_due_operations()
        pushes_round()  # asks Codat about Pending pushes (no webhooks reach this test)
        run_due_operations()
        if not BankTransaction.objects.filter(account=account).exclude(state="synced").exists():
            break
    # then every transaction is synced, in three pushes of at most 1,000
    assert BankTransaction.objects.filter(account=account, state="synced").count() == 2300
    pushes = list(BankFeedPush.objects.filter(account=account).order_by("created_at"))
    assert [p.transaction_count for p in pushes] == [1000, 1000, 300]
    assert {p.status for p in pushes} == {PushStatus.SUCCESS}
    # and the sandbox holds each once, in date order
    remote = _sandbox_pushes(sandbox, connection.company)
    assert {p["status"] for p in remote} == {"Success"}
    sent = [t for push in remote for t in push["data"]["transactions"]]
    assert [t["id"] for t in sent] == [row["id"] for row in rows]
    assert [t["date"] for t in sent] == sorted(t["date"] for t in sent)
    assert all("+" not in t["date"] and not t["date"].endswith("Z") for t in sent)


def test_a_retried_push_whose_answer_was_lost_is_found_in_codats_history_not_sent_again(
    sandbox, operations_env
):
    # given a push whose first call reached Codat but whose answer never came back
    connection = _onboarded(sandbox)
    account = source_account_create(connection=connection, data={"id": "acc-1", **ACCOUNT})
    run_due_operations()
    _mapped(sandbox, connection, "acc-1", timezone.now() - timedelta(days=2))
    transactions_submit(
        account=account, rows=transactions(5, start=timezone.now() - timedelta(hours=3))
    )
    push = account_push_next(account_id=account.pk)
    operation = Operation.objects.get(kind=OperationKind.PUSH_BANK_TRANSACTIONS)
    client = sandbox_client(sandbox)
    operation.attempts = 1
    first = calls.push_at_codat(client, operation)  # the lost answer
    # when the worker tries again
    operation.attempts = 2
    second = calls.push_at_codat(client, operation)
    client.close()
    # then it adopts the push Codat already has
    assert second["pushOperationKey"] == first["pushOperationKey"]
    assert len(_sandbox_pushes(sandbox, connection.company)) == 1
    push.refresh_from_db()
    assert push.sent_at is not None


def test_a_push_codat_refuses_sets_its_transactions_aside_with_codats_reason(
    sandbox, operations_env
):
    # given a push to an account that was deleted at Codat behind the portal's back
    connection = _onboarded(sandbox)
    account = source_account_create(connection=connection, data={"id": "acc-1", **ACCOUNT})
    run_due_operations()
    _mapped(sandbox, connection, "acc-1", timezone.now() - timedelta(days=2))
    client = sandbox_client(sandbox)
    client.delete_source_account(
        str(connection.company.codat_id), str(connection.codat_id), "acc-1"
    )
    client.close()
    transactions_submit(
        account=account, rows=transactions(3, start=timezone.now() - timedelta(hours=3))
    )
    push = account_push_next(account_id=account.pk)
    # when the push is sent
    assert run_due_operations() == ["failed"]
    # then the batch is set aside with Codat's words, and the push says it never landed
    push.refresh_from_db()
    assert push.status == PushStatus.REFUSED
    reasons = set(
        BankTransaction.objects.filter(account=account).values_list("set_aside_reason", flat=True)
    )
    assert len(reasons) == 1 and "not found" in reasons.pop().lower()


def test_a_timed_out_batch_is_pushed_again_and_lands_once(sandbox, operations_env, settings):
    # given a push Codat times out
    sandbox.control("PUT", "push", {"delaySeconds": 0, "outcome": "TimedOut"})
    settings.BANK_FEEDS_POLL_PENDING_SECONDS = 0
    connection = _onboarded(sandbox)
    account = source_account_create(connection=connection, data={"id": "acc-1", **ACCOUNT})
    run_due_operations()
    _mapped(sandbox, connection, "acc-1", timezone.now() - timedelta(days=2))
    rows = transactions(40, start=timezone.now() - timedelta(hours=3))
    transactions_submit(account=account, rows=rows)
    first = account_push_next(account_id=account.pk)
    run_due_operations()
    sandbox.advance(1)
    pushes_round()
    run_due_operations()
    first.refresh_from_db()
    assert first.status == PushStatus.TIMED_OUT
    assert set(BankTransaction.objects.values_list("state", "failed_pushes")) == {("waiting", 1)}
    # when Codat takes pushes again
    sandbox.control("PUT", "push", {"outcome": "Success"})
    for _ in range(5):
        account_push_next(account_id=account.pk)
        run_due_operations()
        sandbox.advance(1)
        pushes_round()
        run_due_operations()
    # then the batch landed once
    assert set(BankTransaction.objects.values_list("state", flat=True)) == {"synced"}
    remote = _sandbox_pushes(sandbox, connection.company)
    assert [p["status"] for p in remote] == ["TimedOut", "Success"]
    assert [t["id"] for t in remote[1]["data"]["transactions"]] == [row["id"] for row in rows]
