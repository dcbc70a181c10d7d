"""Every page and bulk action of bench/admin_scale.py costs the same number of queries for a book
of 5 companies and one of 50 (issue 14): a page whose queries grow with the book fails here, in
`make test`, and not only in the benchmark. The books are `seed_scale`'s (portal/scale_book.py),
so this also holds the command to the book's shape."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bench.admin_scale import LINES, landmarks
from companies.models import Company, Connection, DataTypeStatus, PullOperation
from consent.models import ConsentEvent
from operations.models import Job, Operation
from portal.scale_book import scale_book_build
from products.models import CompanyProduct
from webhooks.models import WebhookEvent

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the book is PostgreSQL's"),
]


def _queries_of_every_line(client) -> dict[str, int]:
    marks = landmarks()
    counts = {}
    for label, target in LINES:

        def fetch(target=target):
            if callable(target):
                return target(client, marks)
            return client.get(target.format(**marks.__dict__))

        warm = fetch()  # caches (content types, the session) are filled once per process
        assert warm.status_code == 200, (label, warm.status_code)
        with CaptureQueriesContext(connection) as captured:
            response = fetch()
        assert response.status_code == 200, (label, response.status_code)
        counts[label] = len(captured)
    return counts


def test_every_page_and_bulk_action_costs_the_same_queries_for_5_and_50_companies(
    client, monkeypatch
):
    # Anything still planned in chunks of companies would cost a round of queries per 10
    # companies here, as it costs one per 500 in production: 50 companies show it.
    monkeypatch.setattr("operations.planning.CHUNK", 10)
    user = get_user_model().objects.create_superuser("scale-admin", "scale@example.com", "x")
    client.force_login(user)
    scale_book_build(companies=5, log=lambda line: None)
    at_5 = _queries_of_every_line(client)

    scale_book_build(companies=45, allow_non_empty=True, log=lambda line: None)
    at_50 = _queries_of_every_line(client)

    assert Company.objects.count() == 50
    assert at_50 == at_5


def test_the_scale_book_has_the_shape_of_a_banks_book():
    scale_book_build(companies=100, log=lambda line: None)

    assert Company.objects.count() == 100
    assert Connection.objects.count() == 120
    assert CompanyProduct.objects.count() == 200
    assert DataTypeStatus.objects.count() == 1_200
    assert PullOperation.objects.count() == 500
    assert Operation.objects.count() == 300
    assert Job.objects.count() == 3
    assert WebhookEvent.objects.count() == 300
    assert ConsentEvent.objects.count() == 110
    # Each consent grant points at its product's current text and names its data types.
    event = ConsentEvent.objects.select_related("text").first()
    assert event.text.product_id == event.product_id and event.data_types


def test_seed_scale_refuses_a_database_that_already_has_companies():
    scale_book_build(companies=2, log=lambda line: None)

    with pytest.raises(CommandError, match="already has 2 companies"):
        call_command("seed_scale", companies=3)

    assert Company.objects.count() == 2
