"""A bulk action over "all companies of the list" carries the list's query (its filters and
search), not the ids of every company: the confirmation page stays the same size for 3
companies or 100,000, and what is confirmed is the list as filtered when it was selected."""

import pytest
from django.urls import reverse

from operations.models import Job, Operation
from tests.factories import CompanyFactory, CompanyProductFactory, ProductFactory, StaffFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_celery")]

CHANGELIST = "admin:companies_company_changelist"
CONFIRM = "admin:companies_company_confirm_operation"


@pytest.fixture
def operator(client):
    client.force_login(StaffFactory(role="operator"))
    return client


@pytest.fixture
def book():
    """Lending held by three companies ("Holder ..."), and four companies without it."""
    lending = ProductFactory(name="Lending", data_types=["invoices"])
    bank_feeds = ProductFactory(name="Bank Feeds", data_types=["bankAccounts"])
    holders = [CompanyFactory(name=f"Holder {n}") for n in range(3)]
    for company in holders:
        CompanyProductFactory(company=company, product=lending)
    others = [CompanyFactory(name=f"Other {n}") for n in range(4)]
    return {"lending": lending, "bank_feeds": bank_feeds, "holders": holders, "others": others}


def select_all(client, action, query=""):
    """The action over every company of the list as filtered by `query` ("select all")."""
    return client.post(
        reverse(CHANGELIST) + query,
        {"action": action, "select_across": "1", "index": "0", "_selected_action": ["1"]},
    )


def test_select_all_carries_the_lists_query_and_no_company_ids(operator, book):
    lending = book["lending"]

    response = select_all(operator, "add_product_action", f"?product={lending.pk}&q=Holder")

    form = response.context["form"]
    assert response.context["count"] == 3
    assert form["select_across"].value() is True
    assert form["list_query"].value() == f"product={lending.pk}&q=Holder"
    assert not form["company_ids"].value()


def test_the_review_and_the_confirmation_act_on_the_filtered_list_only(operator, book):
    lending, bank_feeds = book["lending"], book["bank_feeds"]
    selection = {"select_across": "on", "list_query": f"product={lending.pk}"}
    data = {"kind": "add_product", "product": bank_feeds.pk, **selection}

    review = operator.post(reverse(CONFIRM), data)
    operator.post(reverse(CONFIRM), {**data, "confirm": "1"})

    assert review.context["plan"].queued == 3
    assert review.context["count"] == 3
    job = Job.objects.get()
    assert set(Operation.objects.filter(job=job).values_list("company_id", flat=True)) == {
        company.pk for company in book["holders"]
    }


def test_a_selection_query_the_list_refuses_is_an_error_on_the_page_not_a_500(operator, book):
    data = {
        "kind": "add_product",
        "product": book["lending"].pk,
        "select_across": "on",
        "list_query": "password__startswith=x",
    }

    response = operator.post(reverse(CONFIRM), data)

    assert response.status_code == 200
    assert "The selection is not readable; select again." in response.content.decode()
    assert response.context["plan"] is None
    assert not Operation.objects.exists()


def test_the_confirmation_page_of_select_all_does_not_grow_with_the_book(operator, book):
    small = len(select_all(operator, "add_product_action").content)
    for n in range(40):
        CompanyFactory(name=f"More {n}")

    large = len(select_all(operator, "add_product_action").content)

    # Only the count's digits may differ.
    assert abs(large - small) < 10
