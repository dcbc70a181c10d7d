"""The company page: its inlines show a bounded number of rows and link the lists that hold
the rest, it links the company's consent matrix, and data types never synced are folded."""

import datetime

import factory
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from codat.data_types import ALL_DATA_TYPES
from companies.models import DataTypeStatus, PullOperation
from operations.models import Operation
from tests.factories import (
    CompanyFactory,
    DataTypeStatusFactory,
    OperationFactory,
    ProductFactory,
    PullOperationFactory,
    StaffFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(client):
    client.force_login(StaffFactory(role="viewer"))
    return client


def company_page(client, company):
    response = client.get(reverse("admin:companies_company_change", args=[company.pk]))
    assert response.status_code == 200
    return response


def inline_rows(response, model) -> list:
    """The rows one inline of the page renders, as model instances."""
    (formset,) = [
        inline.formset
        for inline in response.context["inline_admin_formsets"]
        if inline.formset.model is model
    ]
    return [form.instance for form in formset.initial_forms]


def add_pulls(company, count: int, *, start: datetime.datetime) -> None:
    """`count` pulls of the company, requested one minute apart after `start`."""
    minutes = iter(range(count))
    PullOperationFactory.create_batch(
        count,
        company=company,
        requested=factory.LazyFunction(lambda: start + datetime.timedelta(minutes=next(minutes))),
    )


def add_operations(company, count: int, product) -> None:
    OperationFactory.create_batch(count, company=company, product=product)


def test_a_company_with_120_pulls_shows_the_newest_20_and_links_the_list_of_all(viewer):
    company = CompanyFactory()
    start = timezone.now() - datetime.timedelta(days=1)
    add_pulls(company, 120, start=start)
    PullOperationFactory.create_batch(5)  # another company's pulls

    response = company_page(viewer, company)

    shown = inline_rows(response, PullOperation)
    newest = PullOperation.objects.filter(company=company).order_by("-requested")[:20]
    assert [pull.pk for pull in shown] == [pull.pk for pull in newest]
    all_pulls = reverse("admin:companies_pulloperation_changelist")
    see_all = f"{all_pulls}?company__id__exact={company.pk}"
    content = response.content.decode()
    assert f'<a href="{escape(see_all)}">See all</a>' in content
    assert "Older pull operations, not shown: 100." in content
    # The link's list is the company's 120 pulls, not every company's.
    assert viewer.get(see_all).context["cl"].result_count == 120


def test_a_company_with_60_operations_shows_the_newest_50_and_links_the_operation_list(viewer):
    company = CompanyFactory()
    product = ProductFactory()
    add_operations(company, 60, product)
    add_operations(CompanyFactory(), 3, product)

    response = company_page(viewer, company)

    shown = inline_rows(response, Operation)
    newest = Operation.objects.filter(company=company).order_by("-id")[:50]
    assert [operation.pk for operation in shown] == [operation.pk for operation in newest]
    see_all = f"{reverse('admin:operations_operation_changelist')}?company__id__exact={company.pk}"
    assert f'<a href="{escape(see_all)}">See all</a>' in response.content.decode()
    assert viewer.get(see_all).context["cl"].result_count == 60


def test_a_company_with_few_pulls_shows_them_all_with_no_see_all_link(viewer):
    company = CompanyFactory()
    PullOperationFactory.create_batch(3, company=company)

    response = company_page(viewer, company)

    assert len(inline_rows(response, PullOperation)) == 3
    assert "Older pull operations" not in response.content.decode()


def test_the_company_page_links_the_company_consent_matrix(viewer):
    company = CompanyFactory()

    content = company_page(viewer, company).content.decode()

    matrix = reverse("admin:consent_companyconsent_change", args=[company.pk])
    assert f'<a href="{matrix}">' in content
    assert viewer.get(matrix).status_code == 200


def test_data_types_never_synced_are_counted_and_linked_not_listed(viewer):
    company = CompanyFactory()
    synced, failed, *never = ALL_DATA_TYPES[:6]
    DataTypeStatusFactory(company=company, data_type_id=synced, current_status="Complete")
    # Codat has tried this one and failed: not synced successfully, but it has a status.
    DataTypeStatusFactory(company=company, data_type_id=failed, current_status="FetchError")
    for data_type in never:
        DataTypeStatusFactory(
            company=company, data_type_id=data_type, current_status="", last_successful_sync=None
        )
    DataTypeStatusFactory(data_type_id=never[0], current_status="")  # another company's

    response = company_page(viewer, company)

    shown = {status.data_type_id for status in inline_rows(response, DataTypeStatus)}
    assert shown == {synced, failed}
    content = response.content.decode()
    assert "Data types never synced, not shown: 4." in content
    statuses = reverse("admin:companies_datatypestatus_changelist")
    see_all = (
        f"{statuses}?company__id__exact={company.pk}"
        "&current_status__exact=&last_successful_sync__isnull=True"
    )
    assert f'<a href="{escape(see_all)}">See all</a>' in content
    listed = viewer.get(see_all).context["cl"].result_list
    assert {status.data_type_id for status in listed} == set(never)


def test_the_company_page_costs_the_same_queries_for_few_and_many_pulls_and_operations(viewer):
    company = CompanyFactory()
    product = ProductFactory()
    start = timezone.now() - datetime.timedelta(days=1)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            company_page(viewer, company)
        return len(captured)

    add_pulls(company, 3, start=start)
    add_operations(company, 3, product)
    DataTypeStatusFactory(company=company, data_type_id=ALL_DATA_TYPES[0])
    few = queries()
    add_pulls(company, 80, start=start + datetime.timedelta(hours=2))
    add_operations(company, 80, ProductFactory())
    for data_type in ALL_DATA_TYPES[1:8]:
        DataTypeStatusFactory(company=company, data_type_id=data_type)
    many = queries()

    assert many == few
