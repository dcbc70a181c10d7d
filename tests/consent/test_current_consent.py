"""The stored current consent (`consent.CurrentConsent`) is what the event log adds up to.

The services step the table as they write each event; here random sequences of decisions,
made through the services as staff and customers make them (grants with or without the optional
data type, declines, withdrawals, reconfirmations, some refused as they must be), leave a table
equal to the replay of the log (`consent.selectors._replay`, the definition), and the gate of
operations answers from the table exactly as the replay's consent says it must.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent import selectors, services
from consent.errors import ConsentError
from consent.models import ConsentChannel, ConsentEvent, CurrentConsent
from consent.selectors import ConsentState, ProductConsent
from tests.factories import CompanyFactory, StaffFactory

pytestmark = pytest.mark.django_db

STEPS = st.lists(
    st.tuples(
        st.sampled_from(("grant", "grant_with_optional", "decline", "withdraw", "reconfirm")),
        st.integers(min_value=0, max_value=1),
    ),
    min_size=1,
    max_size=12,
)


def _stored(company) -> dict[int, tuple]:
    return {
        row.product_id: (row.state, frozenset(row.data_types), row.confirmed_at, row.last_event_id)
        for row in CurrentConsent.objects.filter(company=company)
    }


def _replayed(company) -> dict[int, tuple]:
    return {
        product_id: (
            current.state,
            current.data_types,
            current.confirmed_at,
            current.last_event.pk,
        )
        for product_id, current in selectors.consent_replayed(company_ids=[company.pk])
        .get(company.pk, {})
        .items()
        if current.state != ConsentState.NONE
    }


def _decide(step, *, company, product, staff):
    action, _ = step
    actor = services.Actor(channel=ConsentChannel.ADMIN, user=staff)
    text = selectors.consent_text_current(product=product)
    if action.startswith("grant"):
        optional = ("bankAccounts",) if action == "grant_with_optional" else ()
        services.consent_grant(
            company=company,
            product=product,
            text=text,
            optional_data_types=optional if product.identifier == "lending" else (),
            actor=actor,
        )
    elif action == "decline":
        services.consent_decline(company=company, product=product, text=text, actor=actor)
    elif action == "withdraw":
        services.consent_withdraw(company=company, product=product, actor=actor)
    else:
        services.consent_reconfirm(company=company, product=product, actor=actor)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS)
def test_the_table_is_the_replay_of_the_log_after_any_decisions(product, other_product, steps):
    company = CompanyFactory()
    staff = StaffFactory()
    products = (product, other_product)
    for step in steps:
        events_before = ConsentEvent.objects.filter(company=company).count()
        stored_before = _stored(company)
        try:
            _decide(step, company=company, product=products[step[1]], staff=staff)
        except ConsentError:
            # Refused (nothing to withdraw or reconfirm): nothing written, nothing moved.
            assert ConsentEvent.objects.filter(company=company).count() == events_before
            assert _stored(company) == stored_before
        assert _stored(company) == _replayed(company)

    replayed = selectors.consent_replayed(company_ids=[company.pk]).get(company.pk, {})
    for item in products:
        current = replayed.get(item.pk, ProductConsent(product_id=item.pk))
        # The gate reads the table; what it refuses is what the replay's consent refuses.
        expected = selectors._product_refusal(
            item,
            current,
            required=selectors.required_data_types(item),
            asked=frozenset(),
        )
        refused = selectors.companies_refused_for_consent(company_ids=[company.pk], product=item)
        assert refused.get(company.pk, "") == expected
        asked_optional = selectors.companies_refused_for_consent(
            company_ids=[company.pk], product=item, data_types=["bankAccounts"]
        )
        if "bankAccounts" not in current.data_types or not current.is_active:
            assert company.pk in asked_optional


def test_the_migration_and_the_refold_build_the_same_table(product, other_product):
    """Rebuilding from the log (the migration's fold, `current_consent_refold`) gives back the
    rows the services wrote step by step."""
    company = CompanyFactory()
    staff = StaffFactory()
    for step in [("grant", 0), ("grant", 1), ("withdraw", 0), ("grant_with_optional", 0)]:
        _decide(step, company=company, product=(product, other_product)[step[1]], staff=staff)
    written = _stored(company)
    CurrentConsent.objects.filter(company=company).delete()

    assert services.current_consent_refold(company_ids=[company.pk]) == 2
    assert _stored(company) == written
    assert written[product.pk][0] == "active"
    assert written[product.pk][1] == {"invoices", "balanceSheet", "bankAccounts"}
