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


@shared_task(name="consent.tasks.consent_evidence_retention", acks_late=True, ignore_result=True)
def consent_evidence_retention_task() -> dict:
    from consent.services import consent_evidence_retention_run

    counts = consent_evidence_retention_run()
    logger.info("consent_evidence_retention.done", extra=counts)
    return counts
