"""Invariant 4: no Codat read is started for a company without consent covering it.

`operations.consent_gate.companies_refused_for_consent` delegates here; every service of
operations/services.py that adds a product or refreshes data asks it first, whoever calls the
service (admin, API, task, webhook, consent itself). `require_consent` is the one-company form
for code outside those services.
"""

from collections.abc import Iterable

from django.utils import timezone

from consent.errors import ConsentRequired
from consent.models import ConsentEvent
from consent.selectors import ConsentState, ProductConsent, _replay, consent_state
from products.models import ProductDataType


def _states_for(company_ids: list[int], product, now) -> dict[int, dict[int, ProductConsent]]:
    """Current consent per company and product, for many companies in one query."""
    events = ConsentEvent.objects.filter(company_id__in=company_ids).order_by("occurred_at", "id")
    if product is not None:
        events = events.filter(product=product)
    grouped: dict[int, dict[int, list[ConsentEvent]]] = {}
    for event in events.only(
        "company_id", "product_id", "action", "data_types", "occurred_at", "text_id"
    ):
        grouped.setdefault(event.company_id, {}).setdefault(event.product_id, []).append(event)
    return {
        company_id: {
            product_id: _replay(product_id, product_events, now)
            for product_id, product_events in by_product.items()
        }
        for company_id, by_product in grouped.items()
    }


def _describe(state: str) -> str:
    return {
        ConsentState.NONE: "no consent recorded",
        ConsentState.RECONFIRM_NEEDED: "consent must be reconfirmed by the customer",
        ConsentState.WITHDRAWN: "consent withdrawn",
        ConsentState.DECLINED: "consent declined",
    }.get(state, state)


def companies_refused_for_consent(
    *, company_ids: Iterable[int], product=None, data_types: Iterable[str] | None = None
) -> dict[int, str]:
    """Each company (pk) whose consent does not allow the read, with the reason for staff.

    With a product: active consent to that product must cover every required data type it has
    today, and every data type asked for. Without a product (client-level refreshes): each data
    type asked for must be covered by some active consent of the company; "all data" needs at
    least one active consent (Codat reads the client's fetch-on-first-link set, which consent
    per use case cannot describe more closely).
    """
    now = timezone.now()
    ids = list(dict.fromkeys(company_ids))
    asked = frozenset(data_types or ())
    states = _states_for(ids, product, now)
    refused: dict[int, str] = {}
    if product is not None:
        required = frozenset(
            ProductDataType.objects.filter(product=product, is_optional=False).values_list(
                "data_type_id", flat=True
            )
        )
        for company_id in ids:
            current = states.get(company_id, {}).get(
                product.pk, ProductConsent(product_id=product.pk)
            )
            if not current.is_active:
                refused[company_id] = f"{product.name}: {_describe(current.state)}"
                continue
            missing = sorted((required | asked) - current.data_types)
            if missing:
                refused[company_id] = (
                    f"{product.name}: no consent for {', '.join(missing)} (a new consent "
                    "request is needed)"
                )
        return refused
    for company_id in ids:
        active = [c for c in states.get(company_id, {}).values() if c.is_active]
        if not active:
            refused[company_id] = "no active consent for any use case"
            continue
        covered = frozenset().union(*(c.data_types for c in active))
        missing = sorted(asked - covered)
        if missing:
            refused[company_id] = f"no consent for {', '.join(missing)}"
    return refused


def require_consent(*, company, product, data_types: Iterable[str] | None = None) -> None:
    """Raise ConsentRequired unless consent covers the product (and the data types asked)."""
    refused = companies_refused_for_consent(
        company_ids=[company.pk], product=product, data_types=data_types
    )
    if company.pk in refused:
        state = consent_state(company=company, product=product).state
        raise ConsentRequired(company=company, product=product, state=state)
