"""Freshness per company x product x data type: `{product}.read.completed` events move only that
product's reads, so a read for one product never hides a read another product missed on a data
type they share; the stale list and the counts work in the database."""

import uuid
from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from companies.models import ProductReadStatus
from companies.services import company_mirror_from_reference
from operations import selectors
from products.models import CompanyProduct
from tests.factories import CompanyProductFactory, ProductFactory, StaffFactory
from tests.webhooks.conftest import deliver, event_body, read_payload, reference_company
from webhooks.models import EventState

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_products_sharing_invoices(settings):
    """A company that took both products three hours ago; both read invoices every hour."""
    settings.CODAT_RATE_LIMIT_FRESHNESS_GRACE_MINUTES = 30
    lending = ProductFactory(
        identifier="lending",
        name="Lending",
        schedule_kind="hourly",
        data_types=["invoices", "bills"],
    )
    monitoring = ProductFactory(
        identifier="monitoring", name="Monitoring", schedule_kind="hourly", data_types=["invoices"]
    )
    codat_id = uuid.uuid4()
    company = company_mirror_from_reference(
        codat_id=codat_id, reference=reference_company(codat_id)
    )
    three_hours_ago = timezone.now() - timedelta(hours=3)
    for product in (lending, monitoring):
        CompanyProductFactory(company=company, product=product, status_changed_at=three_hours_ago)
    return company, codat_id


def stale_pairs():
    return sorted((row.product.identifier, row.data_type_id) for row in selectors.stale_reads())


def test_each_held_data_type_of_a_product_has_a_row_counting_from_its_activation(
    two_products_sharing_invoices,
):
    company, _ = two_products_sharing_invoices
    rows = ProductReadStatus.objects.filter(assignment__company=company)
    assert sorted((r.product.identifier, r.data_type_id) for r in rows) == [
        ("lending", "bills"),
        ("lending", "invoices"),
        ("monitoring", "invoices"),
    ]
    assert {r.due_from for r in rows} == {
        a.status_changed_at for a in CompanyProduct.objects.filter(company=company)
    }


def test_a_read_for_one_product_leaves_the_other_products_missed_read_stale(
    client, webhook_secret, two_products_sharing_invoices
):
    company, codat_id = two_products_sharing_invoices
    assert stale_pairs() == [
        ("lending", "bills"),
        ("lending", "invoices"),
        ("monitoring", "invoices"),
    ]
    now = timezone.now().replace(microsecond=0)
    body = event_body(
        "monitoring.read.completed", now, read_payload(codat_id, ("invoices", True, "Complete"))
    )

    assert deliver(client, webhook_secret, body).state == EventState.APPLIED

    # Monitoring read invoices; Lending's hourly read of the same data type is still missing.
    assert stale_pairs() == [("lending", "bills"), ("lending", "invoices")]
    row = ProductReadStatus.objects.get(product__identifier="monitoring", data_type="invoices")
    assert (row.last_status, row.last_successful_read, row.due_from) == ("Complete", now, now)
    # The data type's own status knows of the read, whichever product made it.
    assert company.data_type_statuses.get(data_type="invoices").last_successful_sync == now


def test_a_failed_read_is_recorded_but_does_not_count_as_fresh(
    client, webhook_secret, two_products_sharing_invoices
):
    _, codat_id = two_products_sharing_invoices
    now = timezone.now().replace(microsecond=0)
    body = event_body(
        "lending.read.completed", now, read_payload(codat_id, ("invoices", False, "FetchError"))
    )

    assert deliver(client, webhook_secret, body).state == EventState.APPLIED

    row = ProductReadStatus.objects.get(product__identifier="lending", data_type="invoices")
    assert (row.last_status, row.last_read_at, row.last_successful_read) == (
        "FetchError",
        now,
        None,
    )
    assert ("lending", "invoices") in stale_pairs()
    lending = next(p for p in selectors.freshness_by_product() if p.product_name == "Lending")
    assert (lending.scheduled, lending.stale, lending.failing) == (2, 2, 1)


def test_an_older_read_event_never_moves_a_products_read_back(
    client, webhook_secret, two_products_sharing_invoices
):
    _, codat_id = two_products_sharing_invoices
    now = timezone.now().replace(microsecond=0)
    newer = event_body(
        "lending.read.completed", now, read_payload(codat_id, ("invoices", True, "Complete"))
    )
    older = event_body(
        "lending.read.completed",
        now - timedelta(minutes=20),
        read_payload(codat_id, ("invoices", False, "FetchError")),
    )
    deliver(client, webhook_secret, newer)

    assert deliver(client, webhook_secret, older).state == EventState.SUPERSEDED

    row = ProductReadStatus.objects.get(product__identifier="lending", data_type="invoices")
    assert (row.last_status, row.last_successful_read) == ("Complete", now)


def test_a_removed_product_stops_being_followed_and_starts_afresh_when_added_again(
    two_products_sharing_invoices,
):
    from companies.services import product_reads_follow

    company, _ = two_products_sharing_invoices
    lending = CompanyProduct.objects.filter(company=company, product__identifier="lending")
    lending.update(status="removed", status_changed_at=timezone.now())
    product_reads_follow(lending)
    assert stale_pairs() == [("monitoring", "invoices")]

    lending.update(status="active", status_changed_at=timezone.now())
    product_reads_follow(lending)

    assert stale_pairs() == [("monitoring", "invoices")]
    assert ProductReadStatus.objects.filter(product__identifier="lending").count() == 2


def test_a_daily_read_is_stale_only_once_its_scheduled_time_has_passed_by_more_than_the_grace():
    six = time(6, 0)
    grace = timedelta(minutes=30)
    now = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    threshold = selectors.stale_before(
        schedule_kind="daily", schedule_time=six, now=now, grace=grace
    )
    # 06:00 today is more than 30 minutes ago: a read that counts from before it missed it.
    assert threshold == datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    early = datetime(2026, 3, 2, 6, 20, tzinfo=UTC)
    threshold = selectors.stale_before(
        schedule_kind="daily", schedule_time=six, now=early, grace=grace
    )
    assert threshold == datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    # The rule agrees with next_read_due for reads on either side of the threshold.
    for after in (threshold - timedelta(seconds=1), threshold, threshold + timedelta(hours=5)):
        due = selectors.next_read_due(schedule_kind="daily", schedule_time=six, after=after)
        assert (early > due + grace) == (after < threshold)
    assert (
        selectors.stale_before(schedule_kind="none", schedule_time=None, now=now, grace=grace)
        is None
    )


def test_the_stale_page_costs_the_same_queries_for_one_and_for_many_companies(
    client, two_products_sharing_invoices
):
    client.force_login(StaffFactory(role="viewer"))
    url = reverse("admin:operations_operation_stale")
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    lending = CompanyProduct.objects.get(product__identifier="lending").product
    for _ in range(12):
        CompanyProductFactory(
            product=lending, status_changed_at=timezone.now() - timedelta(hours=5)
        )

    with CaptureQueriesContext(connection) as many:
        page = client.get(url).content.decode()

    assert "27 stale reads." in page
    assert len(many) == len(few)
