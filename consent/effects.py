"""The seam between consent and operations: where a consent decision becomes Codat work.

It is the one module of consent that calls operations. Consent owns the evidence; operations
owns the operation rows and the desired state of each company's products, and writes them
itself (no app writes another app's tables). The other direction has one seam too: operations
asks `consent.selectors.companies_refused_for_consent` before it adds a product or reads data.

Called inside the transaction that writes the consent event, so the event and the operation
rows it causes commit or roll back together (design.md: one durable row per Codat call, in the
same transaction as the desired state).
"""

import logging

from django.utils import timezone

from consent.models import ConsentRequest, ConsentRequestReason
from consent.selectors import consent_covers
from operations.models import OperationKind
from operations.services import OperationRefused, operations_start, product_add, product_remove
from products.models import CompanyProduct, CompanyProductStatus, Product

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


def awaiting_adds_settle(*, company_ids, products, created_since) -> int:
    """Adds asked for since a moment stop waiting for consent (a migration rolled back): a
    grant after this must not add the product."""
    return ConsentRequest.objects.filter(
        company_id__in=list(company_ids),
        products__in=list(products),
        reason=ConsentRequestReason.PRODUCT_ADDED,
        product_add_settled_at__isnull=True,
        created_at__gte=created_since,
    ).update(product_add_settled_at=timezone.now())


def product_add_with_consent(*, company, product, actor=None) -> bool:
    """Write the add-product operation for a company whose consent covers it.

    The operations service asks the consent gate again, so an add never outruns the consent
    it waited for. True if the add was written or joined.
    """
    try:
        product_add(company=company, product=product, requested_by=actor)
    except OperationRefused as refusal:
        logger.warning(
            "consent.add_refused",
            extra={"company": company.pk, "product": product.identifier, "reason": str(refusal)},
        )
        return False
    return True


def consent_given(*, company, product, actor=None) -> bool:
    """Consent now covers the product: an add that waited for it goes ahead.

    True if an add was written. A grant that still leaves a required data type uncovered
    keeps the add waiting.
    """
    waiting = list(awaiting_adds(company=company, product=product).order_by("created_at"))
    if not waiting or not consent_covers(company, product):
        return False
    ConsentRequest.objects.filter(pk__in=[r.pk for r in waiting]).update(
        product_add_settled_at=timezone.now()
    )
    # The operator who asked for the add is the one who requested the operation.
    return product_add_with_consent(
        company=company, product=product, actor=waiting[0].created_by or actor
    )


def consent_ended(*, company, product, actor=None) -> bool:
    """Consent no longer covers the product: drop an add that waited for it, and ask Codat to
    remove the product from the company.

    True only if a removal was written or joined now; False if the company does not have the
    product (or it is already on its way out).
    """
    awaiting_adds(company=company, product=product).update(product_add_settled_at=timezone.now())
    assigned = CompanyProduct.objects.filter(
        company=company, product=product, status__in=LIVE_STATUSES
    ).exists()
    if not assigned:
        return False
    try:
        product_remove(company=company, product=product, requested_by=actor)
    except OperationRefused as refusal:
        logger.info(
            "consent.removal_not_needed",
            extra={"company": company.pk, "product": product.identifier, "reason": str(refusal)},
        )
        return False
    return True


def removals_for_ended_consent(*, ended: list[tuple[int, int]]) -> int:
    """The reconciler's form of `consent_ended`, for many (company pk, product pk) pairs whose
    consent ended: write the removal of each product the company still has live (a removal that
    was lost, or that Codat refused, is asked again). Idempotent: a live removal is joined.

    Set-based: one query for the assignments, one for the products, then the bulk service of
    operations once per product (a catalogue holds a handful), whatever the number of
    companies. Returns how many removals were written or joined.
    """
    if not ended:
        return 0
    wanted = set(ended)
    live: dict[int, list[int]] = {}
    assignments = CompanyProduct.objects.filter(
        company_id__in={company_id for company_id, _ in wanted}, status__in=LIVE_STATUSES
    ).values_list("company_id", "product_id")
    for company_id, product_id in assignments:
        if (company_id, product_id) in wanted:
            live.setdefault(product_id, []).append(company_id)
    removals = 0
    for product in Product.objects.filter(pk__in=list(live)).order_by("pk"):
        _job, plan = operations_start(
            kind=OperationKind.REMOVE_PRODUCT,
            company_ids=live[product.pk],
            product=product,
            as_job=False,
        )
        removals += len(plan.operations) + len(plan.joined)
    return removals
