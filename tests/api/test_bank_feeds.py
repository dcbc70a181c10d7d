"""The bank-feed endpoints: a company's source accounts, transactions in, and what synced."""

import pytest

from bankfeeds.models import BankTransaction
from tests.api.conftest import call

pytestmark = pytest.mark.django_db

ROWS = [
    {"id": "tx-1", "date": "2026-11-29T10:21:00+05:00", "amount": -5, "transactionType": "Debit"},
    {"id": "tx-2", "date": "2026-11-29", "amount": "20.50", "transactionType": "Debit"},
]


def _base(world) -> str:
    return f"/api/v1/companies/{world.company.codat_id}/bank-feed-accounts/"


def _transactions_url(world) -> str:
    return f"{_base(world)}{world.bank_account.account_id}/transactions/"


def test_accounts_list_the_mapping_and_the_transactions_by_state(keys, world):
    BankTransaction.objects.create(
        account=world.bank_account,
        transaction_id="tx-old",
        date="2020-01-01T00:00:00Z",
        amount=1,
        content_hash="1" * 64,
        state="set_aside",
        set_aside_reason="Older than the account's latest pushed transaction.",
    )
    response = call("GET", _base(world), keys["read"])
    assert response.status_code == 200, response.content
    (account,) = response.json()["results"]
    assert account["id"] == "acc-current"
    assert account["platform"] == "hcws"
    assert account["mapping_status"] == "connected"
    assert account["target_account_name"] == "Bank (GBP)"
    assert account["transactions"] == {"waiting": 0, "in_push": 0, "synced": 1, "set_aside": 1}
    assert account["latest_synced"] is not None


def test_a_submission_is_stored_once_and_a_resubmission_is_a_no_op(keys, world):
    url = _transactions_url(world)
    first = call("POST", url, keys["operate"], {"transactions": ROWS})
    assert first.status_code == 200, first.content
    assert first.json()["created"] == 2
    # The sign against the type is a warning kept with the row, not a refusal.
    assert first.json()["warnings"][0]["id"] == "tx-2"
    again = call("POST", url, keys["operate"], {"transactions": ROWS})
    assert again.json() == {**first.json(), "created": 0, "unchanged": 2}
    stored = BankTransaction.objects.get(account=world.bank_account, transaction_id="tx-1")
    # Codat reads the local time as written: the offset is dropped, not applied.
    assert stored.date.strftime("%H:%M") == "10:21"
    assert stored.state == "waiting"


def test_other_content_under_a_stored_id_is_a_409_naming_the_ids_and_stores_nothing(keys, world):
    url = _transactions_url(world)
    call("POST", url, keys["operate"], {"transactions": ROWS[:1]})
    changed = [{**ROWS[0], "amount": -6}, {**ROWS[1], "id": "tx-new"}]
    response = call("POST", url, keys["operate"], {"transactions": changed})
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["conflicting_ids"] == ["tx-1"]
    assert not BankTransaction.objects.filter(transaction_id="tx-new").exists()


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"id": "tx-3", "date": "2026-11-29", "amount": "12.345"}, "transactions[1].amount"),
        ({"id": "tx-3", "date": "yesterday", "amount": 1}, "transactions[1].date"),
        (
            {"id": "tx-3", "date": "2026-11-29", "amount": 1, "transactionType": "Gift"},
            "transactions[1].transactionType",
        ),
        (
            {"id": "tx-3", "date": "2026-11-29", "amount": 1, "reconciled": "yes"},
            "transactions[1].reconciled",
        ),
        # The API's JSON parser refuses a NUL anywhere in a body, before the rules see it.
        ({"id": "tx\x003", "date": "2026-11-29", "amount": 1}, "body.transactions.1.id"),
    ],
)
def test_a_row_breaking_the_rules_is_a_422_naming_it_and_stores_nothing(keys, world, row, field):
    response = call(
        "POST", _transactions_url(world), keys["operate"], {"transactions": [ROWS[0], row]}
    )
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert not BankTransaction.objects.filter(transaction_id="tx-1").exists()


def test_balance_is_required_where_the_platform_needs_it(keys, world):
    world.bank_account.connection.platform = "gbol"  # Xero
    world.bank_account.connection.save()
    response = call("POST", _transactions_url(world), keys["operate"], {"transactions": ROWS})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "transactions[0].balance"


@pytest.mark.parametrize("body", [{}, {"transactions": []}, {"transactions": "tx"}, []])
def test_a_body_without_a_list_of_transactions_is_refused(keys, world, body):
    response = call("POST", _transactions_url(world), keys["operate"], body)
    assert response.status_code in (400, 422)
    assert response["Content-Type"] == "application/problem+json"


def test_the_idempotency_key_replays_the_first_answer(keys, world):
    url = _transactions_url(world)
    first = call("POST", url, keys["operate"], {"transactions": ROWS}, **{"Idempotency-Key": "k1"})
    replay = call("POST", url, keys["operate"], {"transactions": ROWS}, **{"Idempotency-Key": "k1"})
    assert replay.json() == first.json() and replay.json()["created"] == 2
    assert replay["Idempotent-Replayed"] == "true"


def test_transactions_and_pushes_list_what_synced(keys, world):
    call("POST", _transactions_url(world), keys["operate"], {"transactions": ROWS})
    listed = call("GET", _transactions_url(world), keys["read"]).json()["results"]
    by_id = {row["id"]: row for row in listed}
    assert by_id["tx-synced"]["state"] == "synced" and by_id["tx-synced"]["push"]
    assert by_id["tx-1"]["state"] == "waiting" and by_id["tx-1"]["date"] == "2026-11-29T10:21:00"
    synced = call("GET", _transactions_url(world) + "?state=synced", keys["read"]).json()
    assert [row["id"] for row in synced["results"]] == ["tx-synced"]
    pushes = call(
        "GET", f"{_base(world)}{world.bank_account.account_id}/pushes/", keys["read"]
    ).json()["results"]
    assert [(push["status"], push["transaction_count"]) for push in pushes] == [("success", 1)]


@pytest.mark.parametrize("account", ["acc-unknown", "acc%00"])
def test_an_account_of_no_such_id_is_a_404(keys, world, account):
    for suffix in ("transactions/", "pushes/"):
        response = call("GET", f"{_base(world)}{account}/{suffix}", keys["read"])
        assert response.status_code == 404
        assert response["Content-Type"] == "application/problem+json"


def test_an_amount_too_large_for_a_decimal_is_a_422_not_a_500(keys, world):
    row = {"id": "tx-big", "date": "2026-11-29", "amount": 4.24e194}
    response = call("POST", _transactions_url(world), keys["operate"], {"transactions": [row]})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "transactions[0].amount", "reason": "is too large"}
    ]
