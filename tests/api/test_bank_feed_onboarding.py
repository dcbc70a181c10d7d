"""Onboarding for bank feeds through the API, as the bank's systems do it: a company and its
connection for a platform, source accounts created, changed and deleted (Codat's v2 fields,
checked before anything is sent), and a fresh link for the SMB. The operation rows run in this
process against the sandbox over HTTP (tests/bankfeeds/helpers.run_due_operations)."""

from datetime import datetime, timedelta

import pytest
from django.conf import settings

from bankfeeds.models import SourceAccount
from operations.models import Operation, OperationKind
from tests.api.conftest import call, make_key
from tests.bankfeeds.conftest import no_celery  # noqa: F401  (the fixture, used by name below)
from tests.bankfeeds.helpers import ACCOUNT, run_due_operations
from tests.operations.helpers import sandbox_client

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_celery"),
]


def _onboard(key, *, platform="hcws", name="Harbour Bank Customer") -> str:
    """Onboard through the API and run the rows; the new company's Codat id."""
    created = call(
        "POST", "/api/v1/bank-feed-companies/", key, {"name": name, "platform": platform}
    )
    assert created.status_code == 202, created.content
    assert created.json()["operation"]["kind"] == OperationKind.CREATE_COMPANY
    run_due_operations()
    operation = call("GET", f"/api/v1/operations/{created.json()['operation']['id']}/", key).json()
    assert operation["state"] == "succeeded", operation
    return operation["company"]


def _remote_accounts(sandbox, company_id: str, connection_id: str) -> list[dict]:
    client = sandbox_client(sandbox)
    try:
        return client.list_source_accounts(company_id, connection_id)
    finally:
        client.close()


def test_a_bank_onboards_a_company_and_manages_its_source_accounts_through_the_api(
    sandbox, operations_env
):
    key = make_key(["read", "operate"], name="Bank onboarding")
    # when the bank onboards a business for QuickBooks Online bank feeds
    company_id = _onboard(key)
    base = f"/api/v1/companies/{company_id}"

    # then its connection exists at Codat, with the SMB's link and when its code expires
    (connection,) = call("GET", f"{base}/bank-feed-connections/", key).json()["results"]
    assert connection["platform"] == "hcws" and connection["state"] == "created"
    assert "otp=" in connection["link_url"]
    fetched = datetime.fromisoformat(connection["link_url_fetched_at"])
    assert datetime.fromisoformat(connection["link_expires_at"]) == fetched + timedelta(hours=1)
    assert connection["mapping_url"].startswith(settings.CONSENT_BASE_URL.rstrip("/") + "/")
    connection_url = f"{base}/bank-feed-connections/{connection['id']}/"

    # a field breaking Codat's v2 rules is a 422 naming it, and nothing is stored or sent
    refused = call(
        "POST", f"{base}/bank-feed-accounts/", key, {"id": "acc-1", **ACCOUNT, "sortCode": ""}
    )
    assert refused.status_code == 422, refused.content
    assert refused["Content-Type"] == "application/problem+json"
    assert [error["field"] for error in refused.json()["errors"]] == ["sortCode"]
    assert not SourceAccount.objects.exists()
    assert not Operation.objects.filter(kind=OperationKind.CREATE_SOURCE_ACCOUNT).exists()

    # when the bank creates an account (the company's one connection is implied)
    created = call(
        "POST",
        f"{base}/bank-feed-accounts/",
        key,
        {"id": "acc-1", **ACCOUNT},
        **{"Idempotency-Key": "acc-1-create"},
    )
    assert created.status_code == 202, created.content
    assert created.json()["state"] == "creating"
    assert created.json()["connection_id"] == connection["id"]
    # a retry under the same key is the first answer again, not a second account
    replay = call(
        "POST",
        f"{base}/bank-feed-accounts/",
        key,
        {"id": "acc-1", **ACCOUNT},
        **{"Idempotency-Key": "acc-1-create"},
    )
    assert replay["Idempotent-Replayed"] == "true" and replay.json() == created.json()
    assert run_due_operations() == ["succeeded"]
    # then Codat has it, pending until the SMB maps it
    (listed,) = call("GET", f"{base}/bank-feed-accounts/", key).json()["results"]
    assert (listed["id"], listed["state"], listed["mapping_status"]) == (
        "acc-1",
        "active",
        "pending",
    )
    remote = _remote_accounts(sandbox, company_id, connection["codat_id"])
    assert [(a["id"], a["accountName"], a["currency"]) for a in remote] == [
        ("acc-1", "Business Current", "GBP")
    ]

    # a fresh link on demand: a new one-time code
    fresh = call("POST", f"{connection_url}link/", key)
    assert fresh.status_code == 202, fresh.content
    assert fresh.json()["operation"]["kind"] == OperationKind.READ_BANK_FEED_LINK
    assert run_due_operations() == ["succeeded"]
    relinked = call("GET", connection_url, key).json()
    assert "otp=" in relinked["link_url"] and relinked["link_url"] != connection["link_url"]

    # an update is checked too, then sent whole
    bad_update = call(
        "POST", f"{base}/bank-feed-accounts/acc-1/update/", key, {**ACCOUNT, "currency": "pound"}
    )
    assert bad_update.status_code == 422
    assert bad_update.json()["errors"][0]["field"] == "currency"
    assert Operation.objects.filter(kind=OperationKind.UPDATE_SOURCE_ACCOUNT).count() == 0
    updated = call(
        "POST",
        f"{base}/bank-feed-accounts/acc-1/update/",
        key,
        {**ACCOUNT, "accountName": "Renamed"},
    )
    assert updated.status_code == 202, updated.content
    assert updated.json()["state"] == "updating"
    assert run_due_operations() == ["succeeded"]
    remote = _remote_accounts(sandbox, company_id, connection["codat_id"])
    assert remote[0]["accountName"] == "Renamed"

    # deleting stops the feed at Codat; the account leaves the listing
    deleted = call("POST", f"{base}/bank-feed-accounts/acc-1/delete/", key)
    assert deleted.status_code == 202, deleted.content
    assert deleted.json()["state"] == "deleting"
    run_due_operations()
    assert _remote_accounts(sandbox, company_id, connection["codat_id"]) == []
    assert call("GET", f"{base}/bank-feed-accounts/", key).json()["results"] == []
    # and a deleted account cannot be changed: a 409 saying why
    again = call(
        "POST", f"{base}/bank-feed-accounts/acc-1/update/", key, {**ACCOUNT, "accountName": "X"}
    )
    assert again.status_code == 409
    assert "deleted" in again.json()["detail"].lower()


def test_an_existing_company_gets_a_second_connection_and_accounts_name_theirs(
    sandbox, operations_env
):
    key = make_key(["read", "operate"], name="Bank onboarding")
    company_id = _onboard(key)
    base = f"/api/v1/companies/{company_id}"
    # a platform Codat does not have for bank feeds is refused, naming the field
    wrong = call("POST", f"{base}/bank-feed-connections/", key, {"platform": "xero"})
    assert wrong.status_code == 400
    assert [error["field"] for error in wrong.json()["errors"]] == ["platform"]
    # Xero as well
    added = call("POST", f"{base}/bank-feed-connections/", key, {"platform": "gbol"})
    assert added.status_code == 202, added.content
    assert (added.json()["state"], added.json()["link_url"]) == ("creating", "")
    # no link yet: refreshing it is a conflict, not a call
    early = call("POST", f"{base}/bank-feed-connections/{added.json()['id']}/link/", key)
    assert early.status_code == 409
    run_due_operations()
    xero = call("GET", f"{base}/bank-feed-connections/{added.json()['id']}/", key).json()
    assert xero["state"] == "created" and xero["link_expires_at"] is None  # Xero's link lasts
    # with two connections, an account must say which
    unnamed = call("POST", f"{base}/bank-feed-accounts/", key, {"id": "acc-x", **ACCOUNT})
    assert unnamed.status_code == 422
    assert unnamed.json()["errors"][0]["field"] == "connection_id"
    named = call(
        "POST",
        f"{base}/bank-feed-accounts/",
        key,
        {"id": "acc-x", **ACCOUNT, "connection_id": xero["id"]},
    )
    assert named.status_code == 202, named.content
    assert named.json()["platform"] == "gbol"
    # the same bank id twice on one connection is refused, naming `id`
    twice = call(
        "POST",
        f"{base}/bank-feed-accounts/",
        key,
        {"id": "acc-x", **ACCOUNT, "connection_id": xero["id"]},
    )
    assert twice.status_code == 422
    assert twice.json()["errors"][0]["field"] == "id"


@pytest.mark.parametrize(
    "path",
    [
        "bank-feed-connections/999999/",
        "bank-feed-connections/abc/",
        "bank-feed-connections/999999/link/",
        "bank-feed-accounts/no-such/update/",
        "bank-feed-accounts/no-such/delete/",
    ],
)
def test_unknown_connections_and_accounts_are_404s(db, path):
    from tests.factories import CompanyFactory

    key = make_key(["read", "operate"])
    company = CompanyFactory()
    method = "GET" if path.endswith("/999999/") or path.endswith("/abc/") else "POST"
    body = ACCOUNT if path.endswith("update/") else None
    response = call(method, f"/api/v1/companies/{company.codat_id}/{path}", key, body)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
