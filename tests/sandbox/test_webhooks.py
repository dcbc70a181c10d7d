"""Webhook consumers, signed delivery with Codat's retries, and every body against the documents."""

import json
import re
import time

import pytest
from standardwebhooks import Webhook

from tests.oas import load_document
from tests.sandbox.contract import check_webhook

pytestmark = pytest.mark.sandbox


def consumer(api, url, event_types, **fields):
    response = api.post("/webhooks", json={"url": url, "eventTypes": event_types, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def test_consumers_create_list_delete_and_limits(api, sandbox):
    created = consumer(
        api, "http://127.0.0.1:9/hooks", ["company.created"], companyTags=["region:uk"]
    )
    assert "secret" not in created and created["disabled"] is False
    assert [c["id"] for c in api.get("/webhooks").json()["results"]] == [created["id"]]
    assert sandbox.secret(created["id"]).startswith("whsec_")
    bad_tags = api.post("/webhooks", json={"url": "http://x/", "companyTags": ["no-colon"]})
    assert bad_tags.status_code == 400 and "companyTags" in bad_tags.json()["error"]
    too_many = api.post(
        "/webhooks", json={"url": "http://x/", "companyTags": [f"k:{i}" for i in range(11)]}
    )
    assert too_many.status_code == 400
    assert api.post("/webhooks", json={"eventTypes": []}).status_code == 400
    for _ in range(49):
        consumer(api, "http://127.0.0.1:9/hooks", ["company.created"])
    fifty_first = api.post("/webhooks", json={"url": "http://127.0.0.1:9/", "eventTypes": []})
    assert fifty_first.status_code == 400 and "at most 50" in fifty_first.json()["error"]
    assert api.delete(f"/webhooks/{created['id']}").status_code == 204
    assert api.delete(f"/webhooks/{created['id']}").status_code == 404


def test_delivery_is_signed_in_the_standard_webhooks_format(api, sandbox, receiver):
    hook = consumer(api, receiver.url, ["company.created"])
    company = api.company("Signed Ltd")
    sandbox.wait_until(lambda: receiver.requests)
    delivered = receiver.requests[0]
    headers = {k.lower(): v for k, v in delivered["headers"].items()}
    assert headers["webhook-id"].startswith("msg_")
    assert headers["webhook-signature"].startswith("v1,")
    body = Webhook(sandbox.secret(hook["id"])).verify(delivered["body"], headers)
    assert body["eventType"] == "company.created" and body["payload"]["id"] == company["id"]
    check_webhook(body)


def test_company_tags_filter_deliveries(api, sandbox, receiver):
    consumer(api, receiver.url, ["company.created"], companyTags=["region:uk", "tier:gold"])
    api.company("Other", tags={"region": "us"})
    api.company("Wanted", tags={"tier": "gold"})
    sandbox.wait_until(lambda: receiver.requests)
    messages = sandbox.control("GET", "webhooks/messages").json()
    assert len(messages) == 1
    assert json.loads(receiver.requests[0]["body"])["payload"]["name"] == "Wanted"


def test_failed_deliveries_retry_on_codats_schedule_with_the_same_id(api, sandbox, receiver):
    receiver.fail_first = 2
    consumer(api, receiver.url, ["company.created"])
    api.company()
    sandbox.wait_until(lambda: len(receiver.requests) == 1)
    message = sandbox.wait_until(
        lambda: next(
            (
                m
                for m in sandbox.control("GET", "webhooks/messages").json()
                if m["state"] == "Pending"
            ),
            None,
        )
    )
    assert len(message["attempts"]) == 1
    sandbox.advance(4)  # the second attempt is due 5 s after the first failure
    assert len(receiver.requests) == 1
    sandbox.advance(1)
    sandbox.wait_until(lambda: len(receiver.requests) == 2)
    sandbox.wait_until(
        lambda: sandbox.control("GET", "webhooks/messages").json()[0]["state"] == "Pending"
    )
    sandbox.advance(300)  # then 5 minutes
    sandbox.wait_until(lambda: len(receiver.requests) == 3)
    ids = {r["headers"]["webhook-id"] for r in receiver.requests}
    assert len(ids) == 1
    final = sandbox.wait_until(
        lambda: [
            m for m in sandbox.control("GET", "webhooks/messages").json() if m["state"] == "Success"
        ]
    )
    assert [a["responseStatusCode"] for a in final[0]["attempts"]] == [500, 500, 200]


def test_duplicate_delivery_fault_sends_the_same_message_twice(api, sandbox, receiver):
    sandbox.control("PUT", "faults", {"duplicateWebhooks": True})
    consumer(api, receiver.url, ["company.created"])
    api.company()
    sandbox.wait_until(lambda: len(receiver.requests) == 2)
    assert (
        receiver.requests[0]["headers"]["webhook-id"]
        == receiver.requests[1]["headers"]["webhook-id"]
    )


def expected_event_types() -> set[str]:
    documented = set()
    for document in ("Codat-Platform.yaml", "Codat-Bank-Feeds.yaml"):
        for key in load_document(document)["webhooks"]:
            documented.add(key.replace("{dataType}", "bankTransactions"))
    return documented


def test_every_documented_event_type_is_sent_and_matches_its_schema(api, sandbox):
    sandbox.control("PUT", "products/cash-flow", {"name": "Cash flow", "dataTypes": ["invoices"]})
    sandbox.control("PUT", "push", {"delaySeconds": 5})
    sandbox.control("PUT", "rate-limits", {"dailyQuota": 60})
    company = api.company("Events Ltd", tags={"region": "uk"}, products=["cash-flow"])
    api.put(f"/companies/{company['id']}/products/lending")
    api.delete(f"/companies/{company['id']}/products/lending")
    failing = api.connection(company["id"])
    sandbox.control("POST", f"companies/{company['id']}/connections/{failing['id']}/cancel")
    api.delete(f"/companies/{company['id']}/connections/{failing['id']}")
    accounting = api.connection(company["id"])
    sandbox.authorize(company["id"], accounting["id"])
    sandbox.control("POST", f"companies/{company['id']}/connections/{accounting['id']}/deauthorize")
    sandbox.authorize(company["id"], accounting["id"])
    feed = api.connection(company["id"], "hcws")
    sandbox.authorize(company["id"], feed["id"])
    accounts = (
        f"/companies/{company['id']}/connections/{feed['id']}/connectionInfo/bankFeedAccounts"
    )
    for account_id in ("acc-1", "acc-2"):
        api.post(
            accounts,
            json={
                "id": account_id,
                "accountName": "Current",
                "accountType": "checking",
                "accountNumber": "12345678",
                "sortCode": "040004",
                "currency": "GBP",
                "balance": 10.5,
            },
        )
    mapping = f"/companies/{company['id']}/connections/{feed['id']}/bankFeedAccounts/mapping"
    api.post(mapping, json={"sourceAccountId": "acc-1", "targetAccountId": "target-gbp-1"})
    feed_path = f"/companies/{company['id']}/connections/{feed['id']}"
    push = feed_path + "/push/bankAccounts/{}/bankTransactions"
    transaction = {
        "id": "t1",
        "date": "2026-01-01T00:00:00",
        "amount": 5,
        "transactionType": "Credit",
    }
    api.post(push.format("acc-1"), json={"accountId": "acc-1", "transactions": [transaction]})
    api.post(push.format("acc-2"), json={"accountId": "acc-2", "transactions": [transaction]})
    api.delete(f"{accounts}/acc-1")
    sandbox.advance(120)
    for _ in range(60):
        if api.get("/companies", contract=False).status_code == 429:
            break
    sandbox.advance(24 * 3600)
    api.delete(f"/companies/{company['id']}")

    events = sandbox.events()
    for body in events:
        check_webhook(body)
    sent = {body["eventType"] for body in events}
    assert expected_event_types() <= sent, expected_event_types() - sent
    assert {
        "cash-flow.read.completed",
        "cash-flow.read.completed.successful",
        "cash-flow.read.completed.initial",
    } <= sent
    assert all(re.match(r"^[0-9a-f-]{36}$", body["id"]) for body in events)


def test_an_endpoint_failing_for_five_days_is_disabled_and_gets_no_more_attempts(
    api, sandbox, receiver
):
    receiver.fail_first = 10**6  # every attempt answers 500
    hook = consumer(api, receiver.url, ["company.created"])

    def attempts() -> list[int]:
        return [len(m["attempts"]) for m in sandbox.control("GET", "webhooks/messages").json()]

    def disabled() -> bool:
        listed = api.get("/webhooks").json()["results"]
        return next(c for c in listed if c["id"] == hook["id"])["disabled"]

    # given: an event whose attempts fail, the last of them a minute short of five days later
    api.company("First Ltd")
    sandbox.wait_until(lambda: attempts() == [1])
    sandbox.advance(5 * 24 * 3600 - 60)
    sandbox.wait_until(lambda: attempts() == [2])
    assert disabled() is False
    # when: a new event's attempt fails five days after the first failure
    sandbox.advance(60)
    api.company("Second Ltd")
    # then: the endpoint is disabled, as Svix does for Codat
    sandbox.wait_until(disabled)
    assert "_failingSince" not in api.get("/webhooks").text
    # and no attempt follows: not for new events, not for the retries still due
    requests_so_far = len(receiver.requests)
    api.company("Third Ltd")
    sandbox.advance(2 * 24 * 3600)
    time.sleep(0.5)
    assert len(receiver.requests) == requests_so_far
    assert sorted(attempts()) == [1, 2]


def test_a_successful_attempt_ends_the_failing_streak(api, sandbox, receiver):
    receiver.fail_first = 1
    hook = consumer(api, receiver.url, ["company.created"])
    api.company("Failing once Ltd")
    sandbox.wait_until(lambda: len(receiver.requests) == 1)
    sandbox.advance(5)  # the retry succeeds
    sandbox.wait_until(lambda: len(receiver.requests) == 2)
    receiver.fail_first = 10**6
    sandbox.advance(5 * 24 * 3600 + 10)
    api.company("Failing again Ltd")  # more than five days after the first failure
    sandbox.wait_until(lambda: len(receiver.requests) == 3)
    time.sleep(0.3)
    listed = api.get("/webhooks").json()["results"]
    assert [c["disabled"] for c in listed if c["id"] == hook["id"]] == [False]


def test_generic_read_sub_events_reach_the_consumers_subscribed_to_them(api, sandbox, receiver):
    generic = [
        "read.completed.successful",
        "read.completed.unsuccessful",
        "read.completed.successful.initial",
    ]
    hook = consumer(api, receiver.url, generic)
    company, _ = api.linked_company()
    sandbox.advance(120)  # the first read ends well: successful and successful.initial
    sandbox.control(
        "PUT", f"companies/{company['id']}/dataset-outcomes", {"invoices": "FetchError"}
    )
    api.post(f"/companies/{company['id']}/data/queue/invoices")
    sandbox.advance(120)  # this one fails: unsuccessful

    sandbox.wait_until(lambda: len(receiver.requests) == 3)
    verifier = Webhook(sandbox.secret(hook["id"]))
    bodies = [
        verifier.verify(r["body"], {k.lower(): v for k, v in r["headers"].items()})
        for r in receiver.requests
    ]
    assert sorted(body["eventType"] for body in bodies) == sorted(generic)
    for body in bodies:
        check_webhook(body)
        assert body["payload"]["referenceCompany"]["id"] == company["id"]
    failed = next(b for b in bodies if b["eventType"] == "read.completed.unsuccessful")
    assert [item["status"] for item in failed["payload"]["dataTypes"]] == ["FetchError"]
