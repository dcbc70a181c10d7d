"""Consent's periodic work: the reconciler (lapses under the reconfirmation policy, removals
of products whose consent ended that were lost or failed)."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="consent.tasks.consent_reconcile", acks_late=True, ignore_result=True)
def consent_reconcile_task() -> dict:
    from consent.services import consent_reconcile

    counts = consent_reconcile()
    logger.info("consent_reconcile.done", extra=counts)
    return counts
