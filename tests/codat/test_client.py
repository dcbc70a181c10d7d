"""CodatClient against a real local HTTP server answering Codat-shaped responses."""

import base64
import pickle
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from codat import (
    CodatBadRequest,
    CodatClient,
    CodatClientError,
    CodatConflict,
    CodatConnectionError,
    CodatForbidden,
    CodatNotFound,
    CodatPaymentRequired,
    CodatRateLimited,
    CodatReadInProgress,
    CodatServerError,
    CodatTimeout,
    CodatUnauthorized,
    CodatUnreadableResponse,
)
from tests.codat.conftest import API_KEY
from tests.codat.fake_codat import error_message

COMPANY_ID = "8a210b68-6988-11ed-a1eb-0242ac120002"
CONNECTION_ID = "2e9d2c44-f675-40ba-8049-353bfcb5e171"


def company(number: int) -> dict:
    return {"id": f"00000000-0000-0000-0000-{number:012d}", "name": f"Company {number}"}


def page(items, *, number, size, total, has_next):
    links = {"self": {"href": "/companies"}, "current": {"href": f"/companies?page={number}"}}
    if has_next:
        links["next"] = {"href": f"/companies?page={number + 1}"}
    return {
        "results": items,
        "pageNumber": number,
        "pageSize": size,
        "totalResults": total,
        "_links": links,
    }


# Requests as sent


def test_it_sends_the_api_key_base64_encoded_as_basic_auth(client, fake_codat):
    client.get_company(COMPANY_ID)

    expected = "Basic " + base64.b64encode(API_KEY.encode()).decode()
    assert fake_codat.hits[0].headers["Authorization"] == expected
    assert fake_codat.hits[0].headers["Accept"] == "application/json"


def test_it_passes_connect_and_read_timeouts_and_never_follows_redirects(client, session):
    client.get_company(COMPANY_ID)
    client.refresh_all_data(COMPANY_ID)

    assert [call["timeout"] for call in session.calls] == [(2.0, 5.0), (2.0, 5.0)]
    assert all(call["allow_redirects"] is False for call in session.calls)


def test_its_default_session_makes_no_hidden_retries():
    client = CodatClient("https://api.codat.io", API_KEY)

    for prefix in ("https://", "http://"):
        assert client.session.get_adapter(prefix).max_retries.total == 0


def test_its_default_session_takes_proxy_and_ca_settings_from_the_environment_once(
    monkeypatch,
):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.bank.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/bank-ca.pem")

    client = CodatClient("https://api.codat.io", API_KEY)

    assert client.session.proxies["https"] == "http://proxy.bank.internal:3128"
    assert client.session.verify == "/etc/ssl/bank-ca.pem"
    # Read once here, not scanned again on every call.
    assert client.session.trust_env is False
    monkeypatch.setenv("NO_PROXY", "api.codat.io")
    assert "https" not in CodatClient("https://api.codat.io", API_KEY).session.proxies


def test_it_quotes_path_parameters(client, fake_codat):
    client.delete_source_account(COMPANY_ID, CONNECTION_ID, "Checking 0202/x")

    assert fake_codat.hits[0].path.endswith("/bankFeedAccounts/Checking%200202%2Fx")


def test_it_sends_products_on_create_company_only_when_given(client, fake_codat):
    client.create_company("Acme", description="Lending applicant", products=["lending"])
    client.create_company("Acme")

    assert fake_codat.hits[0].json() == {
        "name": "Acme",
        "description": "Lending applicant",
        "products": ["lending"],
    }
    assert fake_codat.hits[1].json() == {"name": "Acme"}


def test_it_refreshes_a_product_without_a_body_unless_data_types_are_given(client, fake_codat):
    fake_codat.reply(202)
    fake_codat.reply(202)

    assert client.refresh_product_data(COMPANY_ID, "lending") is None
    client.refresh_product_data(COMPANY_ID, "lending", data_types=["invoices", "payments"])

    assert fake_codat.hits[0].body == b""
    assert fake_codat.hits[1].json() == {"dataTypes": ["invoices", "payments"]}


def test_it_rejects_an_unknown_data_type_without_calling_codat(client, fake_codat):
    with pytest.raises(ValueError, match="invoice"):
        client.refresh_data_type(COMPANY_ID, "invoice")

    assert fake_codat.hits == []


def test_it_rejects_more_than_1000_bank_transactions_without_calling_codat(client, fake_codat):
    transactions = [{"id": str(n), "amount": 1.0} for n in range(1001)]

    with pytest.raises(ValueError, match="1000"):
        client.push_bank_transactions(COMPANY_ID, CONNECTION_ID, "acc-1", transactions)

    assert fake_codat.hits == []


# Successful responses


def test_it_returns_parsed_json(client, fake_codat):
    fake_codat.reply(200, {"id": COMPANY_ID, "name": "Acme", "redirect": "https://link"})

    assert client.get_company(COMPANY_ID)["name"] == "Acme"


@pytest.mark.parametrize(
    ("status", "call"),
    [
        (204, lambda c: c.delete_company(COMPANY_ID)),
        (204, lambda c: c.add_product(COMPANY_ID, "lending")),
        (204, lambda c: c.refresh_all_data(COMPANY_ID)),
        (204, lambda c: c.delete_webhook_consumer(COMPANY_ID)),
        (202, lambda c: c.refresh_product_data(COMPANY_ID, "lending")),
    ],
)
def test_it_returns_none_for_answers_without_a_body(client, fake_codat, status, call):
    fake_codat.reply(status)

    assert call(client) is None


def test_it_ignores_the_body_of_a_connection_delete(client, fake_codat):
    # Codat documents 200 with no content schema for delete-connection.
    fake_codat.reply(200, {"whatever": True})

    assert client.delete_connection(COMPANY_ID, CONNECTION_ID) is None


def test_it_exposes_the_rate_limit_figures_of_a_successful_response(client, fake_codat):
    fake_codat.reply(
        200,
        {"id": COMPANY_ID},
        headers={
            "X-Rate-Limit-Limit": "3000",
            "X-Rate-Limit-Remaining": "2999",
            "X-Rate-Limit-Reset": "2026-11-23T00:00:00Z",
        },
    )

    client.get_company(COMPANY_ID)

    assert client.last_rate_limit.limit == 3000
    assert client.last_rate_limit.remaining == 2999
    assert client.last_rate_limit.reset_at == datetime(2026, 11, 23, tzinfo=UTC)


def test_it_keeps_the_last_known_rate_limit_when_a_response_has_none(client, fake_codat):
    fake_codat.reply(200, {}, headers={"X-Rate-Limit-Remaining": "10"})
    fake_codat.reply(200, {})

    client.get_company(COMPANY_ID)
    client.get_company(COMPANY_ID)

    assert client.last_rate_limit.remaining == 10


# Paging


def test_it_iterates_over_every_page(client, fake_codat):
    fake_codat.reply(200, page([company(1), company(2)], number=1, size=2, total=5, has_next=True))
    fake_codat.reply(200, page([company(3), company(4)], number=2, size=2, total=5, has_next=True))
    fake_codat.reply(200, page([company(5)], number=3, size=2, total=5, has_next=False))

    names = [c["name"] for c in client.iter_companies(query="name~Company", page_size=2)]

    assert names == [f"Company {n}" for n in range(1, 6)]
    assert [hit.query["page"] for hit in fake_codat.hits] == [["1"], ["2"], ["3"]]
    assert {hit.query["pageSize"][0] for hit in fake_codat.hits} == {"2"}
    assert {hit.query["query"][0] for hit in fake_codat.hits} == {"name~Company"}


def test_it_stops_when_the_page_count_reaches_the_total_even_with_a_next_link(client, fake_codat):
    fake_codat.reply(200, page([company(1), company(2)], number=1, size=2, total=2, has_next=True))

    assert len(list(client.iter_companies(page_size=2))) == 2
    assert len(fake_codat.hits) == 1


def test_it_stops_when_there_is_no_next_link(client, fake_codat):
    fake_codat.reply(
        200, page([company(1), company(2)], number=1, size=2, total=99, has_next=False)
    )

    assert len(list(client.iter_companies(page_size=2))) == 2
    assert len(fake_codat.hits) == 1


def test_it_stops_on_an_empty_page(client, fake_codat):
    fake_codat.reply(200, page([], number=1, size=2, total=99, has_next=True))

    assert list(client.iter_pull_operations(COMPANY_ID)) == []
    assert len(fake_codat.hits) == 1


def test_it_fetches_pages_lazily(client, fake_codat):
    fake_codat.reply(200, page([company(1)], number=1, size=1, total=3, has_next=True))

    first = next(client.iter_connections(COMPANY_ID, page_size=1))

    assert first == company(1)
    assert len(fake_codat.hits) == 1


def test_it_rejects_a_page_without_results(client, fake_codat):
    fake_codat.reply(200, {"pageNumber": 1})

    with pytest.raises(CodatUnreadableResponse):
        list(client.iter_push_operations(COMPANY_ID))


# Errors


@pytest.mark.parametrize(
    ("status", "error_class", "transient"),
    [
        (400, CodatBadRequest, False),
        (401, CodatUnauthorized, False),
        (402, CodatPaymentRequired, False),
        (403, CodatForbidden, False),
        (404, CodatNotFound, False),
        (405, CodatClientError, False),
        (409, CodatConflict, False),
        (429, CodatRateLimited, True),
        (500, CodatServerError, True),
        (503, CodatServerError, True),
    ],
)
def test_each_error_status_maps_to_its_class_with_codat_error_fields(
    client, fake_codat, status, error_class, transient
):
    body = error_message(status, "No company was found with ID x", service="ClientsApi")
    body["validation"] = {"errors": [{"itemId": "1", "message": "bad", "validatorName": "v"}]}
    fake_codat.reply(status, body, headers={"X-Rate-Limit-Remaining": "7"})

    with pytest.raises(error_class) as caught:
        client.get_company(COMPANY_ID)

    error = caught.value
    assert type(error) is error_class
    assert error.is_transient is transient
    assert error.http_status == status
    assert error.status_code == status
    assert error.service == "ClientsApi"
    assert error.error == "No company was found with ID x"
    assert error.correlation_id == "7eb40d2d5a2f4d5f8b3b8d2cbd3d4e8f"
    assert error.validation["errors"][0]["message"] == "bad"
    assert error.can_be_retried == "Unknown"
    assert error.detailed_error_code == 0
    assert error.headers["X-Rate-Limit-Remaining"] == "7"
    assert error.rate_limit.remaining == 7
    assert "No company was found" in str(error)


def test_it_calls_codat_exactly_once_on_a_server_error(client, fake_codat):
    fake_codat.reply(500, error_message(500, "Internal error"))
    fake_codat.reply(200, {"id": COMPANY_ID})

    with pytest.raises(CodatServerError):
        client.refresh_all_data(COMPANY_ID)

    assert len(fake_codat.hits) == 1


def test_a_server_error_with_a_non_json_body_is_still_a_server_error(client, fake_codat):
    fake_codat.reply(502, raw=b"<html>Bad Gateway</html>", headers={"Content-Type": "text/html"})

    with pytest.raises(CodatServerError) as caught:
        client.get_company(COMPANY_ID)

    assert caught.value.error is None
    assert caught.value.body == "<html>Bad Gateway</html>"


def test_it_reads_retry_after_in_seconds(client, fake_codat):
    fake_codat.reply(
        429,
        error_message(429, "You have made too many requests in a given amount of time"),
        headers={
            "Retry-After": "120",
            "X-Rate-Limit-Limit": "3000",
            "X-Rate-Limit-Remaining": "0",
            "X-Rate-Limit-Reset": "1795392000",
        },
    )
    before = datetime.now(UTC)

    with pytest.raises(CodatRateLimited) as caught:
        client.get_company(COMPANY_ID)

    error = caught.value
    assert error.retry_after == 120
    assert (
        before + timedelta(seconds=119)
        <= error.retry_at
        <= datetime.now(UTC) + timedelta(seconds=121)
    )
    assert (error.rate_limit.limit, error.rate_limit.remaining) == (3000, 0)
    assert error.rate_limit.reset_at == datetime.fromtimestamp(1795392000, UTC)
    assert client.last_rate_limit == error.rate_limit


def test_it_reads_retry_after_as_an_http_date(client, fake_codat):
    midnight = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    fake_codat.reply(
        429,
        error_message(429, "You have made too many requests"),
        headers={"Retry-After": format_datetime(midnight, usegmt=True)},
    )

    with pytest.raises(CodatRateLimited) as caught:
        client.get_company(COMPANY_ID)

    assert caught.value.retry_at == midnight
    assert 7190 < caught.value.retry_after <= 7200


def test_a_429_without_retry_after_leaves_it_unknown(client, fake_codat):
    fake_codat.reply(429, error_message(429, "You have made too many requests"))

    with pytest.raises(CodatRateLimited) as caught:
        client.get_company(COMPANY_ID)

    assert (caught.value.retry_after, caught.value.retry_at) == (None, None)


def test_a_product_refresh_during_a_read_is_read_in_progress(client, fake_codat):
    fake_codat.reply(
        400,
        error_message(
            400,
            "Data cannot be refreshed while a read operation is in progress. Allow the read"
            " to complete before attempting to refresh.",
        ),
    )

    with pytest.raises(CodatReadInProgress) as caught:
        client.refresh_product_data(COMPANY_ID, "lending")

    assert caught.value.is_transient is False
    assert caught.value.http_status == 400


def test_queueing_a_data_type_already_syncing_is_read_in_progress(client, fake_codat):
    fake_codat.reply(
        400,
        error_message(
            400,
            f"DatasetAlreadyInProgressException: Cannot queue invoices sync for {COMPANY_ID}"
            " as previous sync 3f4b2a1c-0000-4000-8000-000000000001 is still in progress",
            service="PullApi",
        ),
    )

    with pytest.raises(CodatReadInProgress):
        client.refresh_data_type(COMPANY_ID, "invoices")


def test_other_product_refresh_400s_stay_bad_requests(client, fake_codat):
    fake_codat.reply(
        400, error_message(400, "Bank Feeds doesn't support data refreshing. Contact support.")
    )

    with pytest.raises(CodatBadRequest):
        client.refresh_product_data(COMPANY_ID, "bank-feeds")


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b"<html>maintenance</html>", "text/html"),
        (b"", "application/json"),
        (b'["not", "a", "company"]', "application/json"),
    ],
)
def test_a_success_without_the_expected_json_is_unreadable(client, fake_codat, raw, content_type):
    fake_codat.reply(200, raw=raw, headers={"Content-Type": content_type})

    with pytest.raises(CodatUnreadableResponse) as caught:
        client.get_company(COMPANY_ID)

    assert caught.value.http_status == 200
    assert caught.value.is_transient is False


def test_a_redirect_is_not_followed(client, fake_codat):
    fake_codat.reply(302, headers={"Location": "https://elsewhere.example/steal"})

    with pytest.raises(CodatUnreadableResponse, match=r"elsewhere\.example"):
        client.get_company(COMPANY_ID)

    assert len(fake_codat.hits) == 1


def test_connection_refused_is_a_transient_connection_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    session = requests.Session()
    session.trust_env = False
    client = CodatClient(f"http://127.0.0.1:{port}", API_KEY, session=session)

    with pytest.raises(CodatConnectionError) as caught:
        client.get_company(COMPANY_ID)

    assert caught.value.is_transient is True
    assert isinstance(caught.value.__cause__, requests.ConnectionError)


def test_a_slow_answer_is_a_read_timeout(fake_codat, session):
    client = CodatClient(fake_codat.base_url, API_KEY, timeout=(2.0, 0.2), session=session)
    fake_codat.reply(200, {"id": COMPANY_ID}, delay=1.0)

    with pytest.raises(CodatTimeout) as caught:
        client.get_company(COMPANY_ID)

    assert caught.value.is_transient is True
    assert caught.value.during_read is True
    assert len(fake_codat.hits) == 1


def test_an_error_keeps_its_fields_through_pickling(client, fake_codat):
    fake_codat.reply(429, error_message(429, "Too many requests"), headers={"Retry-After": "30"})
    with pytest.raises(CodatRateLimited) as caught:
        client.get_company(COMPANY_ID)

    restored = pickle.loads(pickle.dumps(caught.value))

    assert type(restored) is CodatRateLimited
    assert str(restored) == str(caught.value)
    assert (restored.retry_after, restored.error, restored.http_status) == (
        30,
        "Too many requests",
        429,
    )
