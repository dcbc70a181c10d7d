"""The calls consent makes into the operations services, kept in one place.

Consent never writes operation rows itself: it asks the services that own them, which write
the desired state and the durable row in the caller's transaction.
"""

import logging

logger = logging.getLogger(__name__)


def product_remove_for_consent(*, company, product, actor=None) -> bool:
    """Write the remove-product operation for a company whose consent ended.

    True if a removal row was written or joined; False if there is nothing to remove.
    """
    from operations.services import OperationRefused, product_remove

    try:
        product_remove(company=company, product=product, requested_by=actor)
    except OperationRefused as refusal:
        logger.info(
            "consent.removal_not_needed",
            extra={"company": company.pk, "product": product.identifier, "reason": str(refusal)},
        )
        return False
    return True


def product_add_after_consent(*, company, product, actor=None) -> bool:
    """Write the add-product operation that waited for consent. The operations service asks
    the consent gate again, so an add never outruns the consent it waited for."""
    from operations.services import OperationRefused, product_add

    try:
        product_add(company=company, product=product, requested_by=actor)
    except OperationRefused as refusal:
        logger.warning(
            "consent.awaited_add_refused",
            extra={"company": company.pk, "product": product.identifier, "reason": str(refusal)},
        )
        return False
    return True
