"""A company created through the API with two products, followed to Codat (the sandbox, through
a real worker) and to its consent requests: the product the company consents to reaches Codat,
the other keeps waiting for consent."""

import pytest
from django.test import Client

from api.models import ApiKey
from operations.models import Operation
from tests.api.conftest import call, make_key
from tests.consent.test_pages import grant_through_page, open_link
from tests.operations.helpers import custom_product, sandbox_products
from tests.waiting import wait_until

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.worker,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def test_the_consented_product_reaches_codat_and_the_other_awaits_consent(
    sandbox, operations_worker
):
    # given: two custom products, in Codat's catalogue and the portal's
    cash_flow = custom_product(sandbox)
    custom_product(sandbox, identifier="card-spend", data_types=("bankAccounts",))
    key = make_key(["read", "operate", "consent"], name="Onboarding")
    key_user = ApiKey.objects.get(name="Onboarding").user

    # when: the onboarding system creates the company with both
    created = call(
        "POST",
        "/api/v1/companies/",
        key,
        {"name": "Harbour Coffee", "products": ["cash-flow", "card-spend"]},
        **{"Idempotency-Key": "onboarding-42"},
    )

    # then: both products await consent, and the create is an operation the key asked for
    assert created.status_code == 202, created.content
    assert [(p["product"], p["status"]) for p in created.json()["products"]] == [
        ("cash-flow", "awaiting_consent"),
        ("card-spend", "awaiting_consent"),
    ]
    operation_url = f"/api/v1/operations/{created.json()['operation']['id']}/"
    wait_until(lambda: call("GET", operation_url, key).json()["state"] == "succeeded", timeout=30)
    operation = call("GET", operation_url, key).json()
    assert operation["requested_by"] == key_user.username
    company_id = operation["company"]
    assert sandbox_products(sandbox)[company_id] == []  # nothing went to Codat without consent
    detail = call("GET", f"/api/v1/companies/{company_id}/", key).json()
    assert detail["name"] == "Harbour Coffee"
    assert detail["awaiting_consent"] == ["card-spend", "cash-flow"]
    assert detail["products"] == []
    waiting = call("GET", f"/api/v1/companies/{company_id}/consent/requests/", key).json()
    assert sorted(r["products"][0] for r in waiting["results"]) == ["card-spend", "cash-flow"]
    assert {r["reason"] for r in waiting["results"]} == {"product_added"}

    # when: a link for cash-flow is made through the API and the owner grants through it
    issued = call(
        "POST",
        f"/api/v1/companies/{company_id}/consent/requests/",
        key,
        {"products": ["cash-flow"]},
    )
    assert issued.status_code == 201, issued.content
    token = issued.json()["url"].rstrip("/").rsplit("/", 1)[-1]
    owner = Client()
    open_link(owner, token)
    assert grant_through_page(owner, cash_flow).status_code in (200, 302)

    # then: cash-flow reaches Codat; card-spend still waits for its consent request
    wait_until(lambda: sandbox_products(sandbox)[company_id] == ["cash-flow"], timeout=30)
    wait_until(lambda: products_of(company_id, key) == [("cash-flow", "active")], timeout=30)
    detail = call("GET", f"/api/v1/companies/{company_id}/", key).json()
    assert detail["awaiting_consent"] == ["card-spend"]
    consent = {row["product"]: row for row in detail["consent"]}
    assert consent["cash-flow"]["covered"] is True
    assert consent["card-spend"]["covered"] is False
    add = Operation.objects.get(kind="add_product", company__codat_id=company_id)
    assert add.requested_by == key_user  # the add that waited names the key that asked for it
    events = call("GET", f"/api/v1/companies/{company_id}/consent/events/", key).json()
    assert [(e["product"], e["action"]) for e in events["results"]] == [("cash-flow", "grant")]


def products_of(company_id: str, key: str) -> list[tuple[str, str]]:
    detail = call("GET", f"/api/v1/companies/{company_id}/", key).json()
    return [(row["product"], row["status"]) for row in detail["products"]]
