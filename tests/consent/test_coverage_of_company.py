"""The company page's consent per product (`consent_coverage_of_company`) reads the stored
current consent, replaying none of the log, and comes to what replaying the whole log comes to."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from consent import selectors
from consent.selectors import ConsentState, consent_coverage_of_company, consent_states
from tests.factories import CompanyFactory, ConsentEventFactory, ProductFactory

pytestmark = pytest.mark.django_db

# Each product's log, oldest first: (action, minutes after the start). Equal minutes share a
# timestamp, so the log's order falls back to the row's id.
LOGS = {
    "granted, reconfirmed": [("grant", 0), ("reconfirm", 10)],
    "granted, expired": [("grant", 0), ("expire", 10)],
    "granted, withdrawn": [("grant", 0), ("withdraw", 10)],
    "withdrawn, granted again, reconfirmed": [
        ("grant", 0),
        ("withdraw", 5),
        ("grant", 10),
        ("reconfirm", 20),
    ],
    "declined after a grant": [("grant", 0), ("reconfirm", 1), ("decline", 2)],
    "a reconfirmation with no grant": [("reconfirm", 0)],
    "granted and withdrawn at the same instant": [("grant", 5), ("withdraw", 5)],
    "withdrawn and granted at the same instant": [("withdraw", 5), ("grant", 5)],
    "many grants": [("grant", minute) for minute in range(40)],
}


@pytest.mark.parametrize("log", LOGS.values(), ids=LOGS.keys())
def test_the_state_is_the_full_replays_whatever_the_log(log):
    company = CompanyFactory()
    product = ProductFactory(data_types=["invoices", "bills"])
    other = ProductFactory(data_types=["invoices"])
    start = timezone.now() - timedelta(days=1)
    for action, minute in log:
        ConsentEventFactory(
            company=company,
            product=product,
            action=action,
            occurred_at=start + timedelta(minutes=minute),
        )
    ConsentEventFactory(company=company, product=other, occurred_at=start)

    coverage = consent_coverage_of_company(company=company, products=[product, other])

    full = consent_states(company=company)
    for each in (product, other):
        expected = full.get(each.pk)
        got = coverage[each.pk].consent
        if expected is None:
            assert got.state == ConsentState.NONE
            continue
        assert (got.state, got.data_types, got.granted_at, got.confirmed_at) == (
            expected.state,
            expected.data_types,
            expected.granted_at,
            expected.confirmed_at,
        )
    assert coverage[other.pk].covered


def test_a_long_log_is_not_replayed_for_the_page():
    company = CompanyFactory()
    product = ProductFactory(data_types=["invoices"])
    start = timezone.now() - timedelta(days=1)
    for minute in range(30):
        ConsentEventFactory(
            company=company, product=product, occurred_at=start + timedelta(minutes=minute)
        )
    ConsentEventFactory(
        company=company,
        product=product,
        action="reconfirm",
        occurred_at=start + timedelta(minutes=40),
    )

    with mock.patch("consent.selectors._fold", wraps=selectors._fold) as fold:
        coverage = consent_coverage_of_company(company=company, products=[product])

    # then: the stored consent is read; no event is replayed
    assert not fold.called
    consent = coverage[product.pk].consent
    assert consent.state == ConsentState.ACTIVE
    assert consent.granted_at == start + timedelta(minutes=29)
    assert consent.confirmed_at == start + timedelta(minutes=40)
