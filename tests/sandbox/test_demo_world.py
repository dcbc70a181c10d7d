"""The demo world of `make run` is created in the sandbox through Codat's own API."""

import pytest

from codat import CodatClient
from sandbox.demo import COMPANIES, SandboxDemo

pytestmark = pytest.mark.sandbox


def test_the_demo_creates_companies_in_every_connection_state_once(sandbox):
    demo = SandboxDemo(sandbox.base_url, sandbox.api_key)
    assert demo.seed() == len(COMPANIES)
    assert demo.seed() == 0

    client = CodatClient(sandbox.base_url, sandbox.api_key)
    companies = list(client.iter_companies())
    assert len(companies) == len(COMPANIES)
    statuses = {
        connection["status"] for company in companies for connection in company["dataConnections"]
    }
    assert statuses == {"PendingAuth", "Linked", "Unlinked", "Deauthorized"}
    assert any(not company["dataConnections"] for company in companies)

    northgate = next(company for company in companies if company["name"] == "Northgate Joinery")
    data_status = client.get_data_status(northgate["id"])
    assert data_status["payments"]["currentStatus"] == "FetchError"
    assert data_status["invoices"]["currentStatus"] == "Complete"
    products = {
        product["identifier"]: product for product in sandbox.control("GET", "products").json()
    }
    assert products["invoice-finance"]["schedule"] == {"frequency": "daily", "time": "23:00"}
    assert products["cash-flow-monitoring"]["schedule"] == {"frequency": "hourly"}
