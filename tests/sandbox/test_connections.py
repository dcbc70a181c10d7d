"""Connections and the Link page: authorise or cancel, unlink, deauthorize, delete."""

import re

import pytest
import requests

pytestmark = pytest.mark.sandbox


def event_types(sandbox):
    return [event["eventType"] for event in sandbox.events()]


def test_create_answers_pending_auth_with_a_link_url_on_the_sandbox(api, sandbox):
    company = api.company()
    connection = api.connection(company["id"], "gbol")
    assert connection["status"] == "PendingAuth"
    assert connection["platformName"] == "Xero" and connection["sourceType"] == "Accounting"
    assert connection["linkUrl"] == (
        f"{sandbox.base_url}/link/companies/{company['id']}/connections/{connection['id']}/start"
    )
    listed = api.get(f"/companies/{company['id']}/connections").json()
    assert [c["id"] for c in listed["results"]] == [connection["id"]]
    assert (
        api.get(f"/companies/{company['id']}").json()["dataConnections"][0]["id"]
        == connection["id"]
    )
    assert "connection.created" in event_types(sandbox)


def test_the_link_page_authorises_the_connection(api, sandbox):
    company = api.company()
    connection = api.connection(company["id"])
    page = requests.get(connection["linkUrl"], timeout=5)
    assert page.status_code == 200 and "Authorise" in page.text and "Cancel" in page.text
    action = re.search(r'action="([^"]+/authorise)"', page.text).group(1)
    assert requests.post(sandbox.base_url + action, timeout=5).status_code == 200
    linked = api.get(f"/companies/{company['id']}/connections/{connection['id']}").json()
    assert linked["status"] == "Linked"
    assert "connection.connected" in event_types(sandbox)


def test_cancelling_link_records_codats_403_and_stays_pending(api, sandbox):
    company = api.company()
    connection = api.connection(company["id"])
    page = requests.get(connection["linkUrl"], timeout=5).text
    action = re.search(r'action="([^"]+/cancel)"', page).group(1)
    requests.post(sandbox.base_url + action, timeout=5)
    failed = api.get(f"/companies/{company['id']}/connections/{connection['id']}").json()
    assert failed["status"] == "PendingAuth"
    error = failed["dataConnectionErrors"][0]
    assert error["statusCode"] == "403" and error["statusText"] == "User cancelled linking"
    assert "connection.failed" in event_types(sandbox)


def test_unlink_only_when_linked_then_reconnect(api, sandbox):
    company = api.company()
    connection = api.connection(company["id"])
    path = f"/companies/{company['id']}/connections/{connection['id']}"
    refused = api.patch(path, json={"status": "Unlinked"})
    assert refused.status_code == 400 and "only Linked connections" in refused.json()["error"]
    sandbox.authorize(company["id"], connection["id"])
    unlinked = api.patch(path, json={"status": "Unlinked"})
    assert unlinked.status_code == 200 and unlinked.json()["status"] == "Unlinked"
    sandbox.authorize(company["id"], connection["id"])
    connection_events = [t for t in event_types(sandbox) if t.startswith("connection.")]
    assert connection_events == [
        "connection.created",
        "connection.connected",
        "connection.disconnected",
        "connection.reconnected",
    ]


def test_deauthorize_through_the_control_api(api, sandbox):
    company, connection = api.linked_company()
    sandbox.control("POST", f"companies/{company['id']}/connections/{connection['id']}/deauthorize")
    state = api.get(f"/companies/{company['id']}/connections/{connection['id']}").json()
    assert state["status"] == "Deauthorized"
    assert "connection.disconnected" in event_types(sandbox)


def test_delete_answers_200_and_unknown_ids_404(api, sandbox):
    company = api.company()
    connection = api.connection(company["id"])
    path = f"/companies/{company['id']}/connections/{connection['id']}"
    deleted = api.delete(path)
    assert deleted.status_code == 200
    assert api.get(path).status_code == 404
    assert (
        api.post(
            f"/companies/{company['id']}/connections", json={"platformKey": "zzzz"}
        ).status_code
        == 404
    )
    assert api.post(f"/companies/{company['id']}/connections", json={}).status_code == 400
    assert "connection.deleted" in event_types(sandbox)
