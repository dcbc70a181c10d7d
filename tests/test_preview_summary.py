"""The bulk actions' review counts in SQL (operations.planning.operations_preview_summary) what
the per-company plan (`operations_preview`, which the services write from) decides company by
company: the same queued, joined and left-out companies with the same reasons, for every kind
of bulk action, over a book of mixed consent, assignments and live operations."""

import random

import pytest
from django.db import connection

from companies.models import Company
from operations.models import OperationKind
from operations.planning import dedupe_key, operations_preview, operations_preview_summary
from tests.factories import (
    CompanyFactory,
    CompanyProductFactory,
    ConsentEventFactory,
    OperationFactory,
    ProductFactory,
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the summary is PostgreSQL's"),
]

REQUESTS = [
    (OperationKind.ADD_PRODUCT, True, []),
    (OperationKind.REMOVE_PRODUCT, True, []),
    (OperationKind.REFRESH_PRODUCT, True, []),
    (OperationKind.REFRESH_PRODUCT, True, ["invoices"]),
    (OperationKind.REFRESH_ALL_DATA, False, []),
    (OperationKind.REFRESH_DATA_TYPE, False, ["bills"]),
]


@pytest.fixture
def book():
    rng = random.Random(14)
    product = ProductFactory(name="Invoice Finance", data_types=["invoices", "bills"])
    other = ProductFactory(name="Cash Flow", data_types=["bills"])
    for n in range(40):
        company = CompanyFactory(name=f"Company {n:02}")
        status = rng.choice([None, "active", "pending_add", "removed", "failed"])
        if status:
            CompanyProductFactory(company=company, product=product, status=status)
        for consented in (product, other):
            history = rng.choice([[], ["grant"], ["grant", "withdraw"], ["decline"], ["grant"]])
            for action in history:
                ConsentEventFactory(
                    company=company,
                    product=consented,
                    action=action,
                    data_types=rng.choice([["invoices", "bills"], ["bills"], ["invoices"]]),
                )
    return product


def _live_rows_for_some(kind, product, data_types):
    for company in Company.objects.order_by("pk")[::7]:
        OperationFactory(
            kind=kind,
            company=company,
            product=product,
            dedupe_key=dedupe_key(
                kind=kind,
                company_id=company.pk,
                product_id=product.pk if product else None,
                data_types=data_types,
            ),
        )


@pytest.mark.parametrize("kind, with_product, data_types", REQUESTS)
def test_the_summary_counts_what_the_per_company_plan_decides(book, kind, with_product, data_types):
    product = book if with_product else None
    _live_rows_for_some(kind, product, data_types)
    companies = Company.objects.all()

    plan = operations_preview(
        kind=kind,
        company_ids=companies.values_list("pk", flat=True),
        product=product,
        data_types=data_types,
    )
    summary = operations_preview_summary(
        kind=kind, companies=companies, product=product, data_types=data_types
    )

    assert (summary.queued, summary.joined) == (len(plan.queued), len(plan.joined))
    assert summary.skipped_reasons == plan.skipped_reasons()
    assert [(company.pk, reason) for company, reason in summary.left_out] == list(
        plan.skipped.items()
    )
    assert summary.joined and summary.skipped


def test_the_summary_of_a_filtered_selection_counts_only_its_companies(book):
    companies = Company.objects.filter(name__in=["Company 01", "Company 02", "Company 03"])

    summary = operations_preview_summary(
        kind=OperationKind.ADD_PRODUCT, companies=companies, product=book
    )

    assert summary.selected == 3
