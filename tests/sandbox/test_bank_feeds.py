"""Bank feeds: source accounts (single, batch, update, delete), mapping, transaction pushes."""

import pytest

pytestmark = pytest.mark.sandbox


def account(account_id: str, **fields) -> dict:
    return {
        "id": account_id,
        "accountName": "Business current",
        "accountType": "checking",
        "accountNumber": "12345678",
        "sortCode": "040004",
        "currency": "GBP",
        "balance": 100.0,
        **fields,
    }


@pytest.fixture
def feed(api, sandbox):
    company = api.company("Feeds Ltd")
    connection = api.connection(company["id"], "hcws")
    sandbox.authorize(company["id"], connection["id"])
    base = f"/companies/{company['id']}/connections/{connection['id']}"
    return company, connection, base


def test_source_accounts_lifecycle(api, feed):
    _, _, base = feed
    accounts = f"{base}/connectionInfo/bankFeedAccounts"
    created = api.post(accounts, json=account("a1"))
    assert created.status_code == 200 and created.json()["status"] == "pending"
    assert api.post(accounts, json=account("a1")).status_code == 400
    batch = api.post(f"{accounts}/batch", json=[account("a2"), account("a3")])
    assert batch.status_code == 201
    partial = api.post(f"{accounts}/batch", json=[account("a3"), account("a4")])
    assert partial.status_code == 207
    assert partial.json()[0]["result"]["statusCode"] == "409"
    conflict = api.post(f"{accounts}/batch", json=[account("a4")])
    assert conflict.status_code == 409
    assert [a["id"] for a in api.get(accounts).json()] == ["a1", "a2", "a3", "a4"]
    updated = api.patch(f"{accounts}/a1", json={"id": "a1", "accountName": "Renamed"})
    assert updated.status_code == 200 and updated.json()["accountName"] == "Renamed"
    assert api.delete(f"{accounts}/a1").status_code == 204
    assert api.patch(f"{accounts}/a1", json={"id": "a1"}).status_code == 404


def test_mapping_and_pushing_transactions(api, sandbox, feed):
    company, _, base = feed
    sandbox.control("PUT", "push", {"delaySeconds": 10})
    api.post(f"{base}/connectionInfo/bankFeedAccounts", json=account("a1"))
    api.post(f"{base}/connectionInfo/bankFeedAccounts", json=account("a2"))
    options = api.get(f"{base}/bankFeedAccounts/mapping").json()[0]["targetAccountOptions"]
    target = options[0]["id"]
    mapped = api.post(
        f"{base}/bankFeedAccounts/mapping",
        json={"sourceAccountId": "a1", "targetAccountId": target},
    )
    assert mapped.json()["status"] == "connected"
    duplicate = api.post(
        f"{base}/bankFeedAccounts/mapping",
        json={"sourceAccountId": "a2", "targetAccountId": target},
    )
    assert duplicate.json() == {
        "sourceAccountId": "a2",
        "targetAccountId": target,
        "status": "Failed",
        "error": "A feed connection already exists to this account",
    }
    assert sandbox.events("bankFeeds.sourceAccount.connected")
    transactions = [
        {"id": "t1", "date": "2026-01-01T10:00:00", "amount": 10, "transactionType": "Debit"},
        {"id": "t2", "date": "2026-01-01T11:00:00", "amount": -5, "transactionType": "Debit"},
    ]
    push = api.post(
        f"{base}/push/bankAccounts/a1/bankTransactions",
        json={"accountId": "a1", "transactions": transactions},
    )
    assert push.status_code == 200 and push.json()["status"] == "Pending"
    assert push.json()["validation"]["warnings"][0]["itemId"] == "t1"  # a positive Debit
    key = push.json()["pushOperationKey"]
    unmapped = api.post(
        f"{base}/push/bankAccounts/a2/bankTransactions",
        json={"accountId": "a2", "transactions": transactions},
    ).json()["pushOperationKey"]
    sandbox.advance(10)
    done = api.get(f"/companies/{company['id']}/push/{key}").json()
    assert done["status"] == "Success" and len(done["changes"]) == 2
    failed = api.get(f"/companies/{company['id']}/push/{unmapped}").json()
    assert (
        failed["status"] == "Failed"
        and failed["statusCode"] == 400
        and failed["validation"]["errors"]
    )
    assert sandbox.events("bankTransactions.write.successful")[0]["payload"]["id"] == key
    assert sandbox.events("bankTransactions.write.unsuccessful")[0]["payload"]["id"] == unmapped
    history = api.get(f"/companies/{company['id']}/push", params={"query": "status=Success"}).json()
    assert [p["pushOperationKey"] for p in history["results"]] == [key]


def test_pushes_honour_timeout_in_minutes_and_the_1000_cap(api, sandbox, feed):
    company, _, base = feed
    sandbox.control("PUT", "push", {"delaySeconds": 600})
    api.post(f"{base}/connectionInfo/bankFeedAccounts", json=account("a1"))
    path = f"{base}/push/bankAccounts/a1/bankTransactions"
    too_many = api.post(
        path, json={"accountId": "a1", "transactions": [{"id": str(i)} for i in range(1001)]}
    )
    assert too_many.status_code == 400 and "1000" in too_many.json()["error"]
    key = api.post(
        path, params={"timeoutInMinutes": 1}, json={"accountId": "a1", "transactions": []}
    ).json()["pushOperationKey"]
    sandbox.advance(60)
    assert api.get(f"/companies/{company['id']}/push/{key}").json()["status"] == "TimedOut"
