"""Reads: datasets moving through their stages on the sandbox clock, status, history, refreshes."""

import pytest

pytestmark = pytest.mark.sandbox

FULL_READ_SECONDS = 60  # default stage durations add up to 52 sandbox seconds


def test_first_link_queues_fetch_on_first_link_types_and_reports_not_modified(api, sandbox):
    company, _ = api.linked_company(products=["expenses"])
    history = api.get(f"/companies/{company['id']}/data/history", params={"pageSize": 100}).json()
    queued = {d["dataType"] for d in history["results"]}
    assert {
        "invoices",
        "chartOfAccounts",
        "trackingCategories",
    } <= queued  # trackingCategories: product
    assert all(d["status"] == "Queued" for d in history["results"])
    sandbox.advance(FULL_READ_SECONDS)
    statuses = api.get(f"/companies/{company['id']}/dataStatus").json()
    assert statuses["invoices"]["currentStatus"] == "Complete"
    assert "lastSuccessfulSync" in statuses["invoices"]
    assert "journals" not in statuses  # never synced: left out, as the OAS requires
    completed = sandbox.events("read.completed")
    assert len(completed) == 1
    assert all(item["recordsModified"] is False for item in completed[0]["payload"]["dataTypes"])
    assert len(sandbox.events("read.completed.initial")) == 1


def test_stages_progress_in_order(api, sandbox):
    company, _ = api.linked_company()
    sandbox.advance(FULL_READ_SECONDS)
    queued = api.post(f"/companies/{company['id']}/data/queue/journals")
    assert queued.status_code == 200
    dataset_path = f"/companies/{company['id']}/data/history/{queued.json()['id']}"
    seen = []
    for step in (0, 3, 30, 10, 5, 5):
        sandbox.advance(step)
        seen.append(api.get(dataset_path).json()["status"])
    assert seen == ["Queued", "Fetching", "Mapping", "Validating", "Processing", "Complete"]
    final = api.get(dataset_path).json()
    assert final["isCompleted"] is True and final["isErrored"] is False and final["progress"] == 100
    later = [
        e
        for e in sandbox.events("read.completed")
        if e["payload"]["dataTypes"][0]["dataType"] == "journals"
    ]
    assert later[0]["payload"]["dataTypes"][0]["recordsModified"] is True


def test_queueing_a_running_type_fails_with_dataset_already_in_progress(api, sandbox):
    company, _ = api.linked_company()
    response = api.post(f"/companies/{company['id']}/data/queue/invoices")
    assert response.status_code == 400
    assert response.json()["error"].startswith(
        f"DatasetAlreadyInProgressException: Cannot queue invoices sync for {company['id']}"
    )
    assert api.post(f"/companies/{company['id']}/data/queue/notAType").status_code == 400


def test_refresh_all_queues_only_fetch_on_first_link_types(api, sandbox):
    company, _ = api.linked_company()
    sandbox.advance(FULL_READ_SECONDS)
    assert api.post(f"/companies/{company['id']}/data/all").status_code == 204
    running = api.get(
        f"/companies/{company['id']}/data/history", params={"query": "status=Queued"}
    ).json()["results"]
    types = {d["dataType"] for d in running}
    assert "invoices" in types and "journals" not in types


def test_history_cannot_be_queried_on_is_completed(api, sandbox):
    company, _ = api.linked_company()
    response = api.get(
        f"/companies/{company['id']}/data/history", params={"query": "isCompleted=true"}
    )
    assert response.status_code == 400
    assert (
        response.json()["error"]
        == "Error parsing query - Could not resolve property isCompleted on Dataset"
    )
    failures = api.get(
        f"/companies/{company['id']}/data/history",
        params={"query": "status!=Complete&&status!=NotSupported", "orderBy": "-requested"},
    )
    assert failures.status_code == 200


def test_error_outcomes_end_in_the_right_status(api, sandbox):
    company, _ = api.linked_company()
    sandbox.control("PUT", f"companies/{company['id']}/dataset-outcomes", {"invoices": "MapError"})
    sandbox.advance(FULL_READ_SECONDS)
    status = api.get(f"/companies/{company['id']}/dataStatus").json()["invoices"]
    assert status["currentStatus"] == "MapError" and "lastSuccessfulSync" not in status
    item = next(
        i
        for i in sandbox.events("read.completed")[0]["payload"]["dataTypes"]
        if i["dataType"] == "invoices"
    )
    assert item["status"] == "MapError" and item["issues"]


def test_deauthorized_connections_read_into_auth_error(api, sandbox):
    company, connection = api.linked_company()
    sandbox.advance(FULL_READ_SECONDS)
    sandbox.control("POST", f"companies/{company['id']}/connections/{connection['id']}/deauthorize")
    dataset = api.post(f"/companies/{company['id']}/data/queue/invoices").json()
    sandbox.advance(FULL_READ_SECONDS)
    final = api.get(f"/companies/{company['id']}/data/history/{dataset['id']}").json()
    assert final["status"] == "AuthError" and final["isErrored"] is True


def test_a_completed_read_is_the_last_successful_sync_and_its_connections_last_sync(api, sandbox):
    company, connection = api.linked_company()
    base = f"/companies/{company['id']}"
    sandbox.advance(FULL_READ_SECONDS)

    def invoices_status():
        return api.get(f"{base}/dataStatus").json()["invoices"]

    def connection_last_sync():
        return api.get(f"{base}/connections/{connection['id']}").json().get("lastSync")

    def read_invoices():
        dataset = api.post(f"{base}/data/queue/invoices").json()
        sandbox.advance(FULL_READ_SECONDS)
        return api.get(f"{base}/data/history/{dataset['id']}").json()

    # given: the first read has completed
    first = invoices_status()
    assert first["currentStatus"] == "Complete"
    assert connection_last_sync() == first["lastSuccessfulSync"]
    # when: a refresh completes, then one fails
    refreshed = read_invoices()
    sandbox.control(
        "PUT", f"companies/{company['id']}/dataset-outcomes", {"invoices": "FetchError"}
    )
    failed = read_invoices()
    # then: the refresh is the last successful sync and the connection's last sync; the
    # failure is only the latest sync
    assert refreshed["status"] == "Complete" and failed["status"] == "FetchError"
    assert refreshed["completed"] > first["lastSuccessfulSync"]
    assert invoices_status() == {
        "dataType": "invoices",
        "currentStatus": "FetchError",
        "latestSyncId": failed["id"],
        "lastSuccessfulSync": refreshed["completed"],
        "latestSuccessfulSyncId": refreshed["id"],
    }
    assert connection_last_sync() == refreshed["completed"]
    company_body = api.get(base).json()
    assert company_body["lastSync"] == refreshed["completed"]
    listed = api.get(f"{base}/connections").json()["results"]
    assert [c.get("lastSync") for c in listed] == [refreshed["completed"]]
