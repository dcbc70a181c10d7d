"""Bad input is a problem+json 4xx naming the field and the reason, and changes nothing."""

import json

import pytest

from operations.models import Operation
from tests.api.conftest import call

pytestmark = pytest.mark.django_db


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"]
    return body


def fields(body) -> set:
    return {error["field"] for error in body.get("errors", [])}


@pytest.mark.parametrize(
    ("query", "field", "status"),
    [
        ("connection_status=Sideways", "connection_status", 400),
        ("connection_status=", "connection_status", 400),
        ("data_type_status=Done", "data_type_status", 400),
        ("page_size=0", "page_size", 400),
        ("page_size=201", "page_size", 400),
        ("page_size=ten", "page_size", 400),
        # Well-formed, but naming nothing the API knows: 422.
        ("product=no-such-product", "product", 422),
        ("cursor=not-a-cursor", "cursor", 422),
    ],
)
def test_a_bad_filter_cursor_or_page_size_is_a_4xx_naming_the_field(
    keys, world, query, field, status
):
    body = problem(call("GET", f"/api/v1/companies/?{query}", keys["read"]), status)
    assert field in fields(body)


def test_an_unknown_or_malformed_id_is_a_404(keys, world):
    for url in (
        "/api/v1/companies/00000000-0000-0000-0000-000000000000/",
        "/api/v1/companies/not-a-uuid/",
        "/api/v1/operations/99999999/",
        "/api/v1/operations/abc/",
        "/api/v1/jobs/-1/",
        "/api/v1/products/nothing/",
        f"/api/v1/companies/{world.company.codat_id}/consent/receipts/nope/",
    ):
        problem(call("GET", url, keys["all"]), 404)


def test_a_malformed_body_is_a_400_and_writes_nothing(keys, world):
    before = Operation.objects.count()
    client_body = "{not json"
    from django.test import Client

    response = Client().post(
        "/api/v1/companies/",
        data=client_body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {keys['operate']}"},
    )
    problem(response, 400)
    body = problem(call("POST", "/api/v1/companies/", keys["operate"], ["a list"]), 400)
    assert "body" in fields(body)
    body = problem(
        call("POST", "/api/v1/companies/", keys["operate"], {"name": " ", "products": ["x"]}),
        422,
    )
    assert {"name", "products.0"} <= fields(body)
    body = problem(
        call("POST", "/api/v1/companies/", keys["operate"], {"name": "A", "tags": {"": "x"}}),
        400,
    )
    assert "tags" in fields(body)
    assert Operation.objects.count() == before


def test_a_refusal_of_the_service_is_a_409_with_its_reason(keys, world):
    # Codat does not refresh standard products: the service refuses, the API says why.
    from products.services import product_define

    product_define(identifier="lending", name="Lending", kind="standard", data_types=["invoices"])
    url = f"/api/v1/companies/{world.company.codat_id}/products/lending/refresh/"
    body = problem(call("POST", url, keys["operate"], {}), 409)
    assert "standard product" in body["detail"] or "not active" in body["detail"]


def test_a_key_that_is_not_one_is_401_with_a_challenge(db):
    response = call("GET", "/api/v1/companies/", "cpk_00000000_nothing")
    body = problem(response, 401)
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert body["detail"] == "The API key is not valid."


def test_a_revoked_and_an_expired_key_say_so(keys):
    assert "revoked" in problem(call("GET", "/api/v1/jobs/", keys["revoked"]), 401)["detail"]
    assert "expired" in problem(call("GET", "/api/v1/jobs/", keys["expired"]), 401)["detail"]


def test_a_wrong_method_is_a_405_problem(keys):
    problem(call("DELETE", "/api/v1/companies/", keys["all"]), 405)


def test_a_validation_error_lists_each_field(keys, world):
    body = problem(
        call(
            "POST",
            "/api/v1/products/",
            keys["catalogue"],
            {"identifier": "x y", "name": "", "kind": "odd", "data_types": ["nope"]},
        ),
        400,
    )
    assert {"identifier", "name", "kind", "data_types.0"} <= fields(body)
    assert json.dumps(body)  # plain JSON all the way down


def test_text_postgresql_cannot_store_is_refused_before_the_database(keys, world):
    before = Operation.objects.count()
    body = problem(
        call("POST", "/api/v1/companies/", keys["operate"], {"name": "A", "tags": {"\x00": "x"}}),
        422,
    )
    assert body["errors"][0]["field"] == "body.tags"
    lone_surrogate = b'{"name": "A\\ud800"}'
    from django.test import Client

    response = Client().post(
        "/api/v1/companies/",
        data=lone_surrogate,
        content_type="application/json",
        headers={"Authorization": f"Bearer {keys['operate']}"},
    )
    assert problem(response, 422)["errors"][0]["field"] == "body.name"
    problem(call("GET", "/api/v1/products/%00/", keys["read"]), 404)
    assert Operation.objects.count() == before
