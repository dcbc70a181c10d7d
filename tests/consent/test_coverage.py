"""Consent coverage across the book, in the database (consent.selectors): each company lands
where the event log's replay puts it, the counts per product match the company consent list's
filter, and the number of queries does not depend on the number of companies."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from consent import selectors
from consent.models import ConsentRequest
from consent.selectors import Coverage
from tests.factories import (
    CompanyFactory,
    CompanyProductFactory,
    ConsentEventFactory,
    StaffFactory,
)

pytestmark = pytest.mark.django_db

REQUIRED = ["balanceSheet", "invoices"]
NOW = timezone.now()


def event(company, product, action, *, days_ago, data_types=None, **extra):
    fields = {"data_types": data_types} if data_types is not None else {}
    return ConsentEventFactory(
        company=company,
        product=product,
        action=action,
        occurred_at=NOW - timedelta(days=days_ago),
        **fields,
        **extra,
    )


def request_for(company, product, *, days_ago=1, expires_in_days=6, answered=False):
    created = NOW - timedelta(days=days_ago)
    request = ConsentRequest.objects.create(
        token_hash=uuid.uuid4().hex * 2,
        company=company,
        created_at=created,
        expires_at=NOW + timedelta(days=expires_in_days),
        answered_at=NOW if answered else None,
    )
    request.products.add(product)
    return request


def scenarios(product):
    """(company name, expected coverage or None for "not counted") and the company, made."""
    made = {}

    def company(name, *, held=True):
        made[name] = CompanyFactory(name=name)
        if held:
            CompanyProductFactory(company=made[name], product=product)
        return made[name]

    event(company("granted"), product, "grant", days_ago=5)
    c = company("granted, not held", held=False)
    event(c, product, "grant", days_ago=5)
    c = company("withdrawn")
    event(c, product, "grant", days_ago=5)
    event(c, product, "withdraw", days_ago=2)
    c = company("declined, not held", held=False)
    event(c, product, "decline", days_ago=2)
    c = company("withdrawn then granted again")
    event(c, product, "withdraw", days_ago=9)
    event(c, product, "grant", days_ago=3)
    c = company("expired")
    event(c, product, "grant", days_ago=20)
    event(c, product, "expire", days_ago=1)
    c = company("expired then reconfirmed")
    event(c, product, "grant", days_ago=20)
    event(c, product, "expire", days_ago=4)
    event(c, product, "reconfirm", days_ago=2)
    c = company("reconfirmed then expired again")
    event(c, product, "grant", days_ago=20)
    event(c, product, "expire", days_ago=8)
    event(c, product, "reconfirm", days_ago=6)
    event(c, product, "expire", days_ago=1)
    c = company("granted short of a required data type")
    event(c, product, "grant", days_ago=5, data_types=["invoices"])
    company("held, nothing asked")
    c = company("held, asked")
    request_for(c, product)
    c = company("held, asked, request expired")
    request_for(c, product, days_ago=9, expires_in_days=-2)
    c = company("withdrawn, then asked again")
    event(c, product, "grant", days_ago=9)
    event(c, product, "withdraw", days_ago=5)
    request_for(c, product, days_ago=1)
    c = company("asked, then declined")
    request_for(c, product, days_ago=3)
    event(c, product, "decline", days_ago=1)
    c = company("asked, not held", held=False)
    request_for(c, product)
    c = company("granted and asked again")
    event(c, product, "grant", days_ago=5)
    request_for(c, product)
    c = company("grant and withdrawal at the same moment, withdrawal recorded last")
    event(c, product, "grant", days_ago=2)
    event(c, product, "withdraw", days_ago=2)
    company("not held, never asked", held=False)

    expected = {
        "granted": Coverage.GRANTED,
        "granted, not held": Coverage.GRANTED,
        "withdrawn": Coverage.WITHDRAWN,
        "declined, not held": Coverage.WITHDRAWN,
        "withdrawn then granted again": Coverage.GRANTED,
        "expired": Coverage.MISSING,
        "expired then reconfirmed": Coverage.GRANTED,
        "reconfirmed then expired again": Coverage.MISSING,
        "granted short of a required data type": Coverage.MISSING,
        "held, nothing asked": Coverage.MISSING,
        "held, asked": Coverage.ASKED,
        "held, asked, request expired": Coverage.MISSING,
        "withdrawn, then asked again": Coverage.ASKED,
        "asked, then declined": Coverage.WITHDRAWN,
        "asked, not held": Coverage.ASKED,
        "granted and asked again": Coverage.GRANTED,
        "grant and withdrawal at the same moment, withdrawal recorded last": Coverage.WITHDRAWN,
        "not held, never asked": None,
    }
    return made, expected


@pytest.fixture
def lending(db):
    from products.services import product_define

    return product_define(
        identifier="lending",
        name="Lending",
        kind="custom",
        description="To decide on your loan application.",
        data_types=[*REQUIRED, "bankAccounts"],
        optional_data_types=("bankAccounts",),
    )


def coverage_of(product) -> dict[str, set[str]]:
    return {
        coverage: set(
            selectors.companies_with_coverage(
                product=product, coverage=coverage, now=NOW
            ).values_list("name", flat=True)
        )
        for coverage in Coverage.values
    }


def test_each_company_lands_where_its_events_and_requests_put_it(lending):
    _, expected = scenarios(lending)

    found = coverage_of(lending)

    wanted = {
        coverage: {name for name, where in expected.items() if where == coverage}
        for coverage in Coverage.values
    }
    assert found == wanted


def test_granted_is_exactly_what_the_replay_lets_a_read_through(lending):
    made, _ = scenarios(lending)

    granted = coverage_of(lending)[Coverage.GRANTED]

    refused = selectors.companies_refused_for_consent(
        company_ids=[company.pk for company in made.values()], product=lending
    )
    assert granted == {name for name, company in made.items() if company.pk not in refused}


def test_a_grant_older_than_the_reconfirmation_policy_is_no_longer_granted(lending, settings):
    settings.CONSENT_RECONFIRM_AFTER_DAYS = 10
    old, reconfirmed, recent = (CompanyFactory(name=name) for name in ("old", "rec", "new"))
    for company in (old, reconfirmed, recent):
        CompanyProductFactory(company=company, product=lending)
    event(old, lending, "grant", days_ago=11)
    event(reconfirmed, lending, "grant", days_ago=11)
    event(reconfirmed, lending, "reconfirm", days_ago=3)
    event(recent, lending, "grant", days_ago=9)

    found = coverage_of(lending)

    assert found[Coverage.GRANTED] == {"rec", "new"}
    assert found[Coverage.MISSING] == {"old"}
    refused = selectors.companies_refused_for_consent(
        company_ids=[old.pk, reconfirmed.pk, recent.pk], product=lending
    )
    assert set(refused) == {old.pk}


def test_the_counts_per_product_are_the_sizes_of_the_lists_they_link(lending, client):
    _, expected = scenarios(lending)

    (row,) = [
        item for item in selectors.consent_coverage_by_product(now=NOW) if item.product == lending
    ]

    assert (row.granted, row.asked, row.withdrawn, row.missing) == tuple(
        sum(1 for where in expected.values() if where == coverage) for coverage in Coverage.values
    )
    client.force_login(StaffFactory(role="viewer"))
    for coverage in Coverage.values:
        response = client.get(
            reverse("admin:consent_companyconsent_changelist"),
            {"coverage": f"{lending.pk}.{coverage}"},
        )
        assert response.status_code == 200
        assert response.context["cl"].result_count == getattr(row, coverage), coverage


def test_a_malformed_coverage_filter_is_refused_not_a_500(lending, client):
    client.force_login(StaffFactory(role="viewer"))
    url = reverse("admin:consent_companyconsent_changelist")

    for junk in ("abc", f"{lending.pk}.everything", "999999.granted", "."):
        response = client.get(url, {"coverage": junk})
        # The admin's answer to a bad filter: back to the list with ?e=1.
        assert response.status_code == 302, junk
        assert response["Location"].endswith("?e=1")


def test_counting_costs_the_same_queries_for_ten_or_forty_companies(lending):
    def grow(count):
        for index in range(count):
            company = CompanyFactory()
            CompanyProductFactory(company=company, product=lending)
            if index % 3 == 0:
                event(company, lending, "grant", days_ago=2)
            elif index % 3 == 1:
                request_for(company, lending)

    grow(10)
    with CaptureQueriesContext(connection) as small:
        selectors.consent_coverage_by_product(now=NOW)
    grow(30)
    with CaptureQueriesContext(connection) as large:
        rows = selectors.consent_coverage_by_product(now=NOW)

    assert len(small) == len(large)
    assert rows[0].total == 40
