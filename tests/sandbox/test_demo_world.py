"""The demo world of `make run`, seeded by the sandbox itself (`POST /_sandbox/demo`)."""

import pytest

from sandbox.demo import COMPANIES, CUSTOM_PRODUCTS

pytestmark = pytest.mark.sandbox


def test_the_demo_creates_companies_in_every_connection_state_once(api, sandbox):
    first = sandbox.control("POST", "demo").json()
    second = sandbox.control("POST", "demo").json()

    assert first == {
        "created": len(COMPANIES),
        "companies": len(COMPANIES),
        "customProducts": ["invoice-finance", "cash-flow-monitoring"],
        "firstReadsFinished": True,
    }
    assert second["created"] == 0
    companies = api.get("/companies", params={"pageSize": 500}).json()["results"]
    assert len(companies) == len(COMPANIES)
    assert len(sandbox.events("company.created")) == len(COMPANIES)
    statuses = {
        connection["status"] for company in companies for connection in company["dataConnections"]
    }
    assert statuses == {"PendingAuth", "Linked", "Unlinked", "Deauthorized"}
    assert any(not company["dataConnections"] for company in companies)
    harbour = next(company for company in companies if company["name"] == "Harbour Coffee Roasters")
    assert harbour["products"] == ["lending", "invoice-finance"]
    assert harbour["tags"] == {"segment": "retail"}

    # The first reads have ended, each as the demo chose.
    northgate = next(company for company in companies if company["name"] == "Northgate Joinery")
    data_status = api.get(f"/companies/{northgate['id']}/dataStatus").json()
    assert data_status["payments"]["currentStatus"] == "FetchError"
    assert data_status["invoices"]["currentStatus"] == "Complete"
    products = {
        product["identifier"]: product for product in sandbox.control("GET", "products").json()
    }
    assert products["invoice-finance"]["schedule"] == {"frequency": "daily", "time": "23:00"}
    assert products["cash-flow-monitoring"]["schedule"] == {"frequency": "hourly"}


def test_the_demos_products_and_outcomes_are_ones_the_sandbox_accepts(sandbox):
    standard = {p["identifier"] for p in sandbox.control("GET", "products").json()}
    for name, platform_key, outcome, products, failing in COMPANIES:
        assert set(products) <= standard | set(CUSTOM_PRODUCTS), name
        assert outcome in (None, "PendingAuth", "Linked", "Unlinked", "Deauthorized", "Cancelled")
        assert (platform_key is None) == (outcome is None), name
        sandbox.control("PUT", "datasets", {"outcomes": failing})
