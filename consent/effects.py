"""What a consent decision does to the company's products at Codat.

Called inside the transaction that writes the consent event, so the event and the operation
rows it causes commit together (design.md: one durable row per Codat call, in the same
transaction as the desired state).
"""

import logging

from django.utils import timezone

from consent import hooks
from consent.models import ConsentRequest, ConsentRequestReason
from products.models import CompanyProduct, CompanyProductStatus

logger = logging.getLogger(__name__)

# Assignments that read data at Codat, or are on their way to.
LIVE_STATUSES = (CompanyProductStatus.PENDING_ADD, CompanyProductStatus.ACTIVE)


def awaiting_adds(*, company, product):
    """Requests sent because an operator added the product without consent, still waiting."""
    return ConsentRequest.objects.filter(
        company=company,
        products=product,
        reason=ConsentRequestReason.PRODUCT_ADDED,
        product_add_settled_at__isnull=True,
    )


def consent_given(*, company, product, actor=None) -> bool:
    """Consent now covers the product: an add that waited for it goes ahead.

    True if an add was written. A grant that still leaves a required data type uncovered
    keeps the add waiting.
    """
    from consent.selectors import consent_covers

    waiting = list(awaiting_adds(company=company, product=product).order_by("created_at"))
    if not waiting or not consent_covers(company, product):
        return False
    ConsentRequest.objects.filter(pk__in=[r.pk for r in waiting]).update(
        product_add_settled_at=timezone.now()
    )
    # The operator who asked for the add is the one who requested the operation.
    return hooks.product_add_after_consent(
        company=company, product=product, actor=waiting[0].created_by or actor
    )


def consent_ended(*, company, product, actor=None) -> bool:
    """Consent no longer covers the product: ask Codat to remove it from the company.

    Idempotent: True only if a removal was written or joined now (the reconciler calls it every
    period for every ended consent, so a lost or failed removal is asked again). An add that
    was waiting for this consent is dropped.
    """
    awaiting_adds(company=company, product=product).update(product_add_settled_at=timezone.now())
    assigned = CompanyProduct.objects.filter(
        company=company, product=product, status__in=LIVE_STATUSES
    ).exists()
    if not assigned:
        return False
    return hooks.product_remove_for_consent(company=company, product=product, actor=actor)
