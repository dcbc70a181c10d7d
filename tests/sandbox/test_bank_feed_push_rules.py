"""The sandbox refuses what Codat refuses in a bank-transactions push: a missing required field
(400, naming it), and pushes out of order, older than the account's latest transaction, in the
future, or too far before the feed start date (the push Fails with the reason)."""

import pytest

from tests.sandbox.test_bank_feeds import account

pytestmark = pytest.mark.sandbox


def _mapped_feed(api, sandbox, platform: str, feed_start: str | None = None):
    company = api.company("Rules Ltd")
    connection = api.connection(company["id"], platform)
    sandbox.authorize(company["id"], connection["id"])
    base = f"/companies/{company['id']}/connections/{connection['id']}"
    api.post(f"{base}/connectionInfo/bankFeedAccounts", json=account("a1"))
    options = api.get(f"{base}/bankFeedAccounts/mapping").json()[0]["targetAccountOptions"]
    mapping = {"sourceAccountId": "a1", "targetAccountId": options[0]["id"]}
    if feed_start:
        mapping["feedStartDate"] = feed_start
    assert (
        api.post(f"{base}/bankFeedAccounts/mapping", json=mapping).json()["status"] == "connected"
    )
    return company, f"{base}/push/bankAccounts/a1/bankTransactions"


def _push(api, path, *transactions):
    return api.post(path, json={"accountId": "a1", "transactions": list(transactions)})


def _outcome(api, sandbox, company, response) -> dict:
    assert response.status_code == 200, response.text
    sandbox.advance(1)
    key = response.json()["pushOperationKey"]
    return api.get(f"/companies/{company['id']}/push/{key}").json()


def tx(tid: str, date: str, **fields) -> dict:
    return {"id": tid, "date": date, "amount": -5, **fields}


def test_a_missing_required_field_is_a_400_naming_it_and_balance_is_required_outside_qbo(
    api, sandbox
):
    sandbox.control("PUT", "push", {"delaySeconds": 0, "outcome": "Success"})
    _, path = _mapped_feed(api, sandbox, "gbol")
    refused = _push(api, path, tx("t1", "2026-01-01T10:00:00"))
    assert refused.status_code == 400 and "balance" in refused.text
    for broken, field in (
        ({"date": None}, "date"),
        ({"amount": None}, "amount"),
        ({"id": ""}, "id"),
    ):
        response = _push(api, path, {**tx("t1", "2026-01-01T10:00:00", balance=1), **broken})
        assert response.status_code == 400 and field in response.text
    company, qbo_path = _mapped_feed(api, sandbox, "hcws")
    assert (
        _outcome(api, sandbox, company, _push(api, qbo_path, tx("t1", "2026-01-01")))["status"]
        == "Success"
    )


def test_pushes_out_of_order_older_than_the_latest_or_in_the_future_fail_with_the_reason(
    api, sandbox
):
    sandbox.control("PUT", "push", {"delaySeconds": 0, "outcome": "Success"})
    company, path = _mapped_feed(api, sandbox, "hcws")
    out_of_order = _push(
        api, path, tx("t2", "2026-01-02T10:00:00"), tx("t1", "2026-01-01T10:00:00")
    )
    failed = _outcome(api, sandbox, company, out_of_order)
    assert failed["status"] == "Failed"
    assert "chronological" in failed["validation"]["errors"][0]["message"]
    landed = _push(api, path, tx("t1", "2026-01-01T10:00:00"), tx("t2", "2026-01-02T10:00:00"))
    assert _outcome(api, sandbox, company, landed)["status"] == "Success"
    older = _outcome(api, sandbox, company, _push(api, path, tx("t0", "2026-01-01T09:00:00+02:00")))
    assert older["status"] == "Failed"
    assert "latest transaction" in older["validation"]["errors"][0]["message"]
    # The same moment as the latest is not older (the offset is ignored, not applied).
    same = _outcome(api, sandbox, company, _push(api, path, tx("t3", "2026-01-02T10:00:00-05:00")))
    assert same["status"] == "Success"
    future = _outcome(api, sandbox, company, _push(api, path, tx("t9", "2999-01-01T00:00:00")))
    assert future["status"] == "Failed"
    assert "future" in future["validation"]["errors"][0]["message"]
    assert sandbox.events("bankTransactions.write.unsuccessful")


def test_quickbooks_online_takes_at_most_7_days_before_the_feed_start_date(api, sandbox):
    sandbox.control("PUT", "push", {"delaySeconds": 0, "outcome": "Success"})
    company, path = _mapped_feed(api, sandbox, "hcws", feed_start="2026-01-10T00:00:00")
    too_old = _outcome(api, sandbox, company, _push(api, path, tx("t1", "2026-01-02T23:59:00")))
    assert too_old["status"] == "Failed"
    assert "feed start date" in too_old["validation"]["errors"][0]["message"]
    ok = _outcome(api, sandbox, company, _push(api, path, tx("t1", "2026-01-03T00:00:00")))
    assert ok["status"] == "Success"


def test_the_push_outcome_can_be_set_to_time_out(api, sandbox):
    sandbox.control("PUT", "push", {"delaySeconds": 0, "outcome": "TimedOut"})
    company, path = _mapped_feed(api, sandbox, "hcws")
    timed_out = _outcome(api, sandbox, company, _push(api, path, tx("t1", "2026-01-01")))
    assert timed_out["status"] == "TimedOut"
    assert sandbox.events("bankTransactions.write.unsuccessful")
    # Nothing of it landed: the same transaction goes again.
    sandbox.control("PUT", "push", {"outcome": "Success"})
    again = _outcome(api, sandbox, company, _push(api, path, tx("t1", "2026-01-01")))
    assert again["status"] == "Success"


def test_quickbooks_online_links_carry_a_one_time_code_that_expires_after_an_hour(api, sandbox):
    import requests

    company = api.company("Code Ltd")
    connection = api.connection(company["id"], "hcws")
    assert "?otp=" in connection["linkUrl"]
    assert requests.get(connection["linkUrl"], timeout=5).status_code == 200
    sandbox.advance(3601)
    expired = requests.get(connection["linkUrl"], timeout=5)
    assert expired.status_code == 401 and "expired" in expired.text
    # Reading the connection again gives a fresh code.
    fresh = api.get(f"/companies/{company['id']}/connections/{connection['id']}").json()
    assert fresh["linkUrl"] != connection["linkUrl"]
    assert requests.get(fresh["linkUrl"], timeout=5).status_code == 200
    stripped = fresh["linkUrl"].split("?")[0]
    assert requests.get(stripped, timeout=5).status_code == 401
    # Other platforms' links carry no code.
    xero = api.connection(company["id"], "gbol")
    assert "otp" not in xero["linkUrl"]
