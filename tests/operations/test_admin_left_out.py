"""The bulk add's confirmation names the companies it leaves out, and offers to ask those left
out for lack of consent, so that their add waits and goes ahead on their grant."""

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from consent.models import ConsentEvent, ConsentRequest
from operations import planning
from operations.models import Job, Operation
from products.models import CompanyProduct
from tests.factories import CompanyFactory, CompanyProductFactory, ProductFactory, StaffFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_celery")]

CONFIRM = "admin:companies_company_confirm_operation"
NO_CONSENT = "Lending: no consent recorded"


@pytest.fixture
def operator(client):
    client.force_login(StaffFactory(role="operator"))
    return client


@pytest.fixture
def viewer(client):
    client.force_login(StaffFactory(role="viewer"))
    return client


@pytest.fixture
def lending(db):
    return ProductFactory(name="Lending", identifier="lending", data_types=["invoices"])


@pytest.fixture
def selection(lending, refuse_consent):
    """Two companies consent covers, one that already has Lending, two without consent."""
    covered = [CompanyFactory(name=f"Covered {n}") for n in range(2)]
    has_it = CompanyFactory(name="Has it already")
    CompanyProductFactory(company=has_it, product=lending)
    uncovered = [
        CompanyFactory(name="Uncovered A", tags={"email": "owner@a.example"}),
        CompanyFactory(name="Uncovered B"),
    ]
    for company in uncovered:
        refuse_consent[company.pk] = NO_CONSENT
    return {"covered": covered, "has_it": has_it, "uncovered": uncovered}


def post(client, lending, companies, **extra):
    data = {
        "kind": "add_product",
        "company_ids": ",".join(str(c.pk) for c in companies),
        "product": lending.pk,
        **extra,
    }
    return client.post(reverse(CONFIRM), data)


def everyone(selection):
    return [*selection["covered"], selection["has_it"], *selection["uncovered"]]


def test_the_confirmation_names_each_left_out_company_with_its_reason(operator, lending, selection):
    content = post(operator, lending, everyone(selection)).content.decode()

    assert "<td>Has it already</td>" in content
    assert "<td>Already has Lending</td>" in content
    assert "<td>Uncovered A</td>" in content and "<td>Uncovered B</td>" in content
    assert content.count(f"<td>{NO_CONSENT}</td>") == 2
    assert "<td>Covered 0</td>" not in content
    assert "<strong>2</strong> of them are left out only for lack of consent" in content
    assert 'name="confirm_and_ask"' in content
    assert "Yes, add product for 2 companies and ask 2 for consent" in content


def test_the_confirmation_names_the_first_ones_and_counts_the_rest(
    operator, lending, selection, monkeypatch
):
    monkeypatch.setattr(planning, "LEFT_OUT_SHOWN", 1)

    content = post(operator, lending, everyone(selection)).content.decode()

    assert "<td>Has it already</td>" in content
    assert "<td>Uncovered A</td>" not in content
    assert "… and 2 more." in content


def test_the_left_out_csv_lists_every_left_out_company(operator, lending, selection, monkeypatch):
    monkeypatch.setattr(planning, "LEFT_OUT_SHOWN", 1)

    response = post(operator, lending, everyone(selection), left_out_csv="1")

    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {(row["company"], row["reason"]) for row in rows} == {
        ("Has it already", "already has Lending"),
        ("Uncovered A", NO_CONSENT),
        ("Uncovered B", NO_CONSENT),
    }
    assert not Operation.objects.exists() and not ConsentRequest.objects.exists()


def test_confirming_and_asking_adds_where_consent_covers_and_asks_each_of_the_others(
    operator, lending, selection, django_capture_on_commit_callbacks, mailoutbox
):
    # when the operator confirms with "ask for consent"
    with django_capture_on_commit_callbacks(execute=True):
        response = post(operator, lending, everyone(selection), confirm_and_ask="1")

    # then the covered companies get their add, in one job
    job = Job.objects.get()
    assert set(job.operations.values_list("company_id", flat=True)) == {
        c.pk for c in selection["covered"]
    }
    assert Operation.objects.count() == 2
    assert set(
        CompanyProduct.objects.filter(status="pending_add").values_list("company_id", flat=True)
    ) == {c.pk for c in selection["covered"]}
    # and each uncovered company one consent request, its add waiting for the grant
    requests = ConsentRequest.objects.all()
    assert sorted(r.company_id for r in requests) == sorted(c.pk for c in selection["uncovered"])
    assert {r.reason for r in requests} == {"product_added"}
    assert all(list(r.products.all()) == [lending] for r in requests)
    assert all(r.product_add_settled_at is None for r in requests)
    assert not ConsentEvent.objects.exists()
    # the address known is e-mailed its link
    assert [message.to for message in mailoutbox] == [["owner@a.example"]]
    # and the page says both, with the job and the links, never cached
    content = response.content.decode()
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert reverse("admin:operations_job_change", args=[job.pk]) in content
    assert "<strong>2</strong> companies were asked to consent to Lending" in content
    assert 'href="data:text/csv;charset=utf-8;base64,' in content


def test_the_links_csv_on_the_result_page_holds_one_working_link_per_asked_company(
    operator, lending, selection
):
    import base64
    import re

    from consent.services import consent_link_usable

    content = post(operator, lending, everyone(selection), confirm_and_ask="1").content.decode()

    encoded = re.search(r'href="data:text/csv;charset=utf-8;base64,([^"]+)"', content).group(1)
    rows = list(csv.DictReader(io.StringIO(base64.b64decode(encoded).decode())))
    assert sorted(row["company"] for row in rows) == ["Uncovered A", "Uncovered B"]
    tokens = [row["consent_link"].rstrip("/").rsplit("/", 1)[-1] for row in rows]
    assert all(consent_link_usable(token=token) for token in tokens)


def test_asking_with_every_company_uncovered_asks_without_an_empty_add(
    operator, lending, selection
):
    response = post(operator, lending, selection["uncovered"], confirm_and_ask="1")

    assert ConsentRequest.objects.count() == 2
    assert not Operation.objects.exists() and not Job.objects.exists()
    assert "nothing is sent to Codat now" in response.content.decode()


def test_a_viewer_cannot_confirm_and_ask(viewer, lending, selection):
    response = post(viewer, lending, everyone(selection), confirm_and_ask="1")

    assert response.status_code == 403
    assert not Operation.objects.exists()
    assert not ConsentRequest.objects.exists()


def test_an_operator_without_the_right_to_send_consent_requests_is_not_offered_it(
    client, lending, selection
):
    operator = StaffFactory(role="operator")
    operator.groups.first().permissions.remove(
        *operator.groups.first().permissions.filter(codename="send_consent_requests")
    )
    client.force_login(operator)

    page = post(client, lending, everyone(selection)).content.decode()
    response = post(client, lending, everyone(selection), confirm_and_ask="1")

    assert 'name="confirm_and_ask"' not in page
    assert response.status_code == 403
    assert not ConsentRequest.objects.exists()


def test_the_confirmation_page_queries_do_not_grow_with_the_selection(
    operator, lending, refuse_consent
):
    def queries_for(size):
        companies = CompanyFactory.create_batch(size)
        for company in companies[::2]:
            refuse_consent[company.pk] = NO_CONSENT
        with CaptureQueriesContext(connection) as captured:
            assert post(operator, lending, companies).status_code == 200
        return len(captured)

    queries_for(1)  # the first request also reads what is cached for the process afterwards
    assert queries_for(3) == queries_for(30)
