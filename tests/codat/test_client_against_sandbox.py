"""The client and the sandbox, over real HTTP: what one sends the other understands."""

import concurrent.futures
import uuid

import pytest

from codat import (
    CodatClient,
    CodatIdempotencyInFlight,
    CodatNotFound,
    CodatRateLimited,
    CodatReadInProgress,
    CodatUnauthorized,
)
from codat.errors import CodatBadRequest

pytestmark = pytest.mark.sandbox


@pytest.fixture
def client(sandbox):
    with_client = CodatClient(sandbox.base_url, sandbox.api_key, timeout=(2, 10))
    yield with_client
    with_client.close()


def define_custom_product(sandbox, identifier="invoice-finance"):
    sandbox.control(
        "PUT",
        f"products/{identifier}",
        json={"name": "Invoice finance", "dataTypes": ["invoices", "payments"]},
    ).raise_for_status()


def linked_company(sandbox, client, name="Harbour Coffee Roasters"):
    company = client.create_company(name)
    connection = client.create_connection(company["id"], "gbol")
    sandbox.authorize(company["id"], connection["id"])
    return company, connection


def test_a_company_is_created_read_listed_and_deleted(client):
    created = client.create_company("Harbour Coffee (Roasters)", tags={"segment": "retail"})
    # Codat strips forbidden characters rather than rejecting the name.
    assert created["name"] == "Harbour Coffee Roasters"
    assert client.get_company(created["id"])["tags"] == {"segment": "retail"}
    names = [company["name"] for company in client.iter_companies(query="name~Harbour")]
    assert names == ["Harbour Coffee Roasters"]
    client.delete_company(created["id"])
    with pytest.raises(CodatNotFound) as raised:
        client.get_company(created["id"])
    assert raised.value.http_status == 404
    assert raised.value.correlation_id


def test_paging_walks_every_page(client):
    for index in range(7):
        client.create_company(f"Paged Company {index}")
    listed = list(client.iter_companies(page_size=3, order_by="name"))
    assert [company["name"] for company in listed] == [f"Paged Company {i}" for i in range(7)]


def test_a_wrong_key_is_refused_with_a_typed_error(sandbox):
    with pytest.raises(CodatUnauthorized):
        CodatClient(sandbox.base_url, "not-the-key").list_companies()


def test_linking_then_adding_a_product_queues_its_data_types(sandbox, client):
    define_custom_product(sandbox)
    company, connection = linked_company(sandbox, client)
    assert client.get_connection(company["id"], connection["id"])["status"] == "Linked"

    client.add_product(company["id"], "invoice-finance")

    assert "invoice-finance" in client.get_company(company["id"])["products"]
    history = list(client.iter_pull_operations(company["id"]))
    assert {"invoices", "payments"} <= {operation["dataType"] for operation in history}
    client.remove_product(company["id"], "invoice-finance")
    assert "invoice-finance" not in client.get_company(company["id"])["products"]


def test_refreshing_during_a_running_read_is_a_typed_read_in_progress(sandbox, client):
    define_custom_product(sandbox)
    company, _ = linked_company(sandbox, client)
    client.add_product(company["id"], "invoice-finance")
    with pytest.raises(CodatReadInProgress):
        client.refresh_product_data(company["id"], "invoice-finance")


def test_a_standard_product_refresh_is_refused_with_codats_reason(sandbox, client):
    company, _ = linked_company(sandbox, client)
    with pytest.raises(CodatBadRequest) as raised:
        client.refresh_product_data(company["id"], "bank-feeds")
    assert "doesn't support data refreshing" in raised.value.error


def test_past_the_ceiling_the_client_reports_retry_after_and_the_figures(sandbox, client):
    sandbox.control("PUT", "rate-limits", json={"perMinute": 3}).raise_for_status()
    with pytest.raises(CodatRateLimited) as raised:
        for _ in range(5):
            client.list_companies()
    assert raised.value.retry_after is not None and raised.value.retry_after > 0
    assert raised.value.is_transient
    assert client.last_rate_limit.limit is not None


def test_a_data_type_refresh_returns_a_pull_operation_and_data_status_follows(sandbox, client):
    company, _ = linked_company(sandbox, client)
    sandbox.advance(3600)
    operation = client.refresh_data_type(company["id"], "invoices")
    assert operation["dataType"] == "invoices"
    assert operation["status"] == "Queued"
    sandbox.advance(3600)
    status = client.get_data_status(company["id"])["invoices"]
    assert status["currentStatus"] == "Complete"
    assert status["latestSyncId"] == operation["id"]


def test_a_refresh_is_refused_only_while_a_read_of_that_product_runs(sandbox, client):
    define_custom_product(sandbox)
    sandbox.control(
        "PUT", "products/cash-flow", json={"name": "Cash flow", "dataTypes": ["bills"]}
    ).raise_for_status()
    company, _ = linked_company(sandbox, client)
    sandbox.advance(3600)
    client.add_product(company["id"], "invoice-finance")  # its read runs now
    client.add_product(company["id"], "cash-flow")
    sandbox.advance(3600)
    client.refresh_product_data(company["id"], "invoice-finance", data_types=["invoices"])

    # Another product refreshes; the same product is refused whatever types it names.
    client.refresh_product_data(company["id"], "cash-flow")
    with pytest.raises(CodatReadInProgress):
        client.refresh_product_data(company["id"], "invoice-finance", data_types=["payments"])


def test_a_create_repeated_with_its_idempotency_key_makes_one_company(client):
    key = str(uuid.uuid4())
    first = client.create_company("Once Ltd", idempotency_key=key)
    again = client.create_company("Once Ltd", idempotency_key=key)
    assert again == first
    assert [c["name"] for c in client.iter_companies()] == ["Once Ltd"]


def test_a_repeat_while_the_first_create_runs_is_a_transient_in_flight_error(sandbox):
    key = str(uuid.uuid4())
    sandbox.control("PUT", "faults", json={"latencyMs": 1500}).raise_for_status()

    def create(_):
        own = CodatClient(sandbox.base_url, sandbox.api_key, timeout=(2, 10))
        try:
            return own.create_company("Once Ltd", idempotency_key=key)
        except CodatIdempotencyInFlight as error:
            return error
        finally:
            own.close()

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(create, range(2)))

    (refused,) = [o for o in outcomes if isinstance(o, CodatIdempotencyInFlight)]
    assert refused.http_status == 409 and refused.is_transient
