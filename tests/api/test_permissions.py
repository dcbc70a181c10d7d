"""The permission matrix: every endpoint against each scope, no key, a revoked and an expired key.

A principal with the endpoint's scope gets the endpoint's success status (the world has what
each write needs); one without it 403; no key, a revoked or an expired key 401. `all` holds every
scope, so it must get every endpoint's success status.
"""

import pytest

from core.roles import API_SCOPES
from tests.api.conftest import call

# (method, path with {company} {product} {other} {job} {operation} {receipt} {event} {account},
#  scope needed, body, success status)
ENDPOINTS = [
    ("GET", "/api/v1/companies/", "read", None, 200),
    ("POST", "/api/v1/companies/", "operate", {"name": "New Ltd", "products": ["expenses"]}, 202),
    ("GET", "/api/v1/companies/{company}/", "read", None, 200),
    ("POST", "/api/v1/companies/{company}/products/", "operate", {"product": "expenses"}, 202),
    ("POST", "/api/v1/companies/{company}/products/{product}/remove/", "operate", None, 202),
    ("POST", "/api/v1/companies/{company}/products/{product}/refresh/", "operate", {}, 202),
    # Client-level refreshes fit a company without custom products (refresh by mode).
    (
        "POST",
        "/api/v1/companies/{client_level_company}/refresh/",
        "operate",
        {"data_type": "invoices"},
        202,
    ),
    ("GET", "/api/v1/companies/{company}/consent/", "read", None, 200),
    ("GET", "/api/v1/companies/{company}/consent/events/", "consent", None, 200),
    ("GET", "/api/v1/companies/{company}/consent/receipts/{receipt}/", "consent", None, 200),
    ("GET", "/api/v1/companies/{company}/consent/requests/", "consent", None, 200),
    (
        "POST",
        "/api/v1/companies/{company}/consent/requests/",
        "consent",
        {"products": ["expenses"]},
        201,
    ),
    ("GET", "/api/v1/companies/{company}/bank-feed-accounts/", "read", None, 200),
    (
        "GET",
        "/api/v1/companies/{company}/bank-feed-accounts/{account}/transactions/",
        "read",
        None,
        200,
    ),
    (
        "POST",
        "/api/v1/companies/{company}/bank-feed-accounts/{account}/transactions/",
        "operate",
        {"transactions": [{"id": "tx-1", "date": "2026-11-29T10:21:00", "amount": -5}]},
        200,
    ),
    ("GET", "/api/v1/companies/{company}/bank-feed-accounts/{account}/pushes/", "read", None, 200),
    ("GET", "/api/v1/operations/", "read", None, 200),
    ("GET", "/api/v1/operations/{operation}/", "read", None, 200),
    ("GET", "/api/v1/jobs/", "read", None, 200),
    ("GET", "/api/v1/jobs/{job}/", "read", None, 200),
    ("POST", "/api/v1/jobs/{job}/retry-failed/", "operate", None, 202),
    ("POST", "/api/v1/jobs/{job}/cancel-rest/", "operate", None, 200),
    ("GET", "/api/v1/webhook-events/", "read", None, 200),
    ("GET", "/api/v1/webhook-events/{event}/", "read", None, 200),
    ("GET", "/api/v1/products/", "read", None, 200),
    ("GET", "/api/v1/products/{product}/", "read", None, 200),
    (
        "POST",
        "/api/v1/products/",
        "catalogue",
        {"identifier": "payroll", "name": "Payroll", "kind": "custom", "data_types": ["bills"]},
        200,
    ),
]
PRINCIPALS = [*API_SCOPES, "all", "none", "revoked", "expired"]


def expected_status(principal: str, needed: str, success: int) -> int:
    if principal in ("none", "revoked", "expired"):
        return 401
    if principal == "all" or principal == needed:
        return success
    return 403


@pytest.mark.django_db
@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize(
    ("method", "path", "needed", "body", "success"),
    ENDPOINTS,
    ids=[f"{method} {path}" for method, path, *_ in ENDPOINTS],
)
def test_each_principal_gets_the_status_its_scopes_allow(
    keys, world, principal, method, path, needed, body, success
):
    url = path.format(
        company=world.company.codat_id,
        client_level_company=world.client_level_company.codat_id,
        product=world.product.identifier,
        job=world.job.pk,
        operation=world.operation.pk,
        receipt=world.receipt_id,
        event=world.event.pk,
        account=world.bank_account.account_id,
    )
    response = call(method, url, keys[principal], body)
    assert response.status_code == expected_status(principal, needed, success), response.content
    if response.status_code >= 400:
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["detail"]


def test_the_matrix_covers_every_operation_of_the_schema(db):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    in_schema = {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    in_matrix = {
        (
            method,
            path.replace("{company}", "{company_id}")
            .replace("{client_level_company}", "{company_id}")
            .replace("{product}", "{product}")
            .replace("{job}", "{job_id}")
            .replace("{operation}", "{operation_id}")
            .replace("{receipt}", "{receipt_id}")
            .replace("{event}", "{event_id}")
            .replace("{account}", "{account_id}"),
        )
        for method, path, *_ in ENDPOINTS
    }
    assert in_schema == in_matrix
