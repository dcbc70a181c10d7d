"""What Codat refuses before doing anything: malformed queries, integers beyond int32 where the
documents say int32, methods a path does not have (405 with Allow). And dataStatus entries always
carry currentStatus, as the OAS (and Codat's SDKs) require."""

import pytest

pytestmark = pytest.mark.sandbox

MALFORMED = "Error parsing query - Malformed query."


@pytest.mark.parametrize("query", ["name === {", "name = {", "{name=Acme", "name=<3", "name=x}"])
def test_a_malformed_query_is_400(api, query):
    api.company("Acme")

    response = api.get("/companies", params={"query": query})

    assert response.status_code == 400
    assert response.json()["error"] == MALFORMED


def test_a_well_formed_query_still_filters(api):
    api.company("Acme")
    api.company("Other")
    found = api.get("/companies", params={"query": "{name=Acme||name=Nobody}&&name!=Other"})
    assert [c["name"] for c in found.json()["results"]] == ["Acme"]


def test_a_malformed_history_query_is_400_from_the_pull_api(api):
    company = api.company()
    response = api.get(f"/companies/{company['id']}/data/history", params={"query": "status==="})
    assert response.status_code == 400
    assert response.json()["service"] == "PullApi"


@pytest.mark.parametrize("value", ["2147483648", "-2147483649", "99999999999999999999"])
def test_page_beyond_int32_is_400_naming_the_field(api, value):
    response = api.get("/companies", params={"page": value})
    assert response.status_code == 400
    assert "page:" in response.json()["error"]
    assert response.json()["validation"]["errors"][0]["itemId"] == "page"


def test_the_largest_int32_page_is_accepted(api):
    response = api.get("/companies", params={"page": str(2**31 - 1)})
    assert response.status_code == 200 and response.json()["results"] == []


def test_a_push_timeout_beyond_int32_is_400_naming_the_field(api, sandbox):
    company = api.company()
    feed = api.connection(company["id"], "hcws")
    sandbox.authorize(company["id"], feed["id"])
    connection = f"/companies/{company['id']}/connections/{feed['id']}"
    account = {
        "id": "acc-1",
        "accountName": "Current",
        "accountType": "checking",
        "accountNumber": "12345678",
        "sortCode": "040004",
        "currency": "GBP",
        "balance": 10.5,
    }
    created = api.post(f"{connection}/connectionInfo/bankFeedAccounts", json=account)
    assert created.status_code == 200, created.text
    path = f"{connection}/push/bankAccounts/acc-1/bankTransactions"
    response = api.post(
        path,
        params={"timeoutInMinutes": str(2**31)},
        json={"accountId": "acc-1", "transactions": []},
        contract=False,
    )
    assert response.status_code == 400
    assert response.json()["validation"]["errors"][0]["itemId"] == "timeoutInMinutes"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/companies", {"GET", "HEAD", "POST"}),
        ("POST", "/companies/{id}", {"GET", "HEAD", "PUT", "PATCH", "DELETE"}),
        ("PUT", "/companies/{id}/dataStatus", {"GET", "HEAD"}),
    ],
)
def test_405_carries_allow_with_every_method_of_the_path(api, sandbox, method, path, allowed):
    company = api.company()
    response = sandbox.request(method, path.format(id=company["id"]))
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == allowed


def test_every_data_status_entry_carries_current_status(api, sandbox):
    company, _ = api.linked_company()
    sandbox.advance(120)
    api.post(f"/companies/{company['id']}/data/queue/journals")

    statuses = api.get(f"/companies/{company['id']}/dataStatus").json()

    assert statuses  # the contract check above validated the whole object against DataStatuses
    assert all("currentStatus" in entry for entry in statuses.values())
    assert statuses["journals"]["currentStatus"] == "Queued"
    assert "commerce-orders" not in statuses  # never read: left out
