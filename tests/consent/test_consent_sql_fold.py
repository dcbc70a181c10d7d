"""Current consent as SQL (consent.selectors.current_consent_sql, which the bulk actions' review
reads for 100,000 companies at once: the stored `CurrentConsent` rows with the clock applied)
says what the replay of the log says (`_replay`, the definition), for any history: random ones
here, written in any time order, with and without the reconfirmation policy, including histories
the services never write (a reconfirmation with no grant)."""

import json
import random
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from consent.selectors import ConsentState, consent_replayed, current_consent_sql
from tests.factories import CompanyFactory, ConsentEventFactory, ProductFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the SQL is PostgreSQL's"),
]

ACTIONS = ("grant", "grant", "withdraw", "decline", "reconfirm", "expire")
TYPES = ("invoices", "bills", "customers")


def _random_histories(seed: int):
    rng = random.Random(seed)
    products = [ProductFactory(data_types=list(TYPES)) for _ in range(2)]
    now = timezone.now()
    for _ in range(25):
        company = CompanyFactory()
        for product in products:
            for _ in range(rng.randrange(0, 6)):
                # Whole days back, so several events share a moment and the id decides.
                ConsentEventFactory(
                    company=company,
                    product=product,
                    action=rng.choice(ACTIONS),
                    occurred_at=now - timedelta(days=rng.randrange(0, 90)),
                    data_types=sorted(rng.sample(TYPES, rng.randrange(1, 4))),
                )
    return products, now


def _sql_states(*, product=None, now):
    sql, params = current_consent_sql(product=product, now=now)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT company_id, product_id, state, data_types::text FROM ({sql}) s", params
        )
        return {
            (company_id, product_id): (state, frozenset(json.loads(types) if types else ()))
            for company_id, product_id, state, types in cursor.fetchall()
        }


def _python_states(*, now):
    return {
        (company_id, product_id): (
            current.state,
            current.data_types if current.state != ConsentState.NONE else frozenset(),
        )
        for company_id, by_product in consent_replayed(now=now).items()
        for product_id, current in by_product.items()
        if current.state != ConsentState.NONE
    }


@pytest.mark.parametrize("reconfirm_after_days", [None, 30])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_sql_fold_agrees_with_the_python_fold(settings, seed, reconfirm_after_days):
    settings.CONSENT_RECONFIRM_AFTER_DAYS = reconfirm_after_days
    _products, now = _random_histories(seed)

    python = _python_states(now=now)
    sql = _sql_states(now=now)

    # Withdrawn and declined consent carries no data types in either fold.
    assert sql == python
    assert {state for state, _ in python.values()} >= {"active", "withdrawn"}


def test_the_sql_fold_for_one_product_has_only_its_rows(settings):
    settings.CONSENT_RECONFIRM_AFTER_DAYS = None
    products, now = _random_histories(4)

    one = _sql_states(product=products[0], now=now)

    assert one == {
        key: value for key, value in _sql_states(now=now).items() if key[1] == products[0].pk
    }
