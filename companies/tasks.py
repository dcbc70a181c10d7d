"""Thin Celery tasks that keep the mirror in step with Codat (companies/codat_import.py)."""

import logging

from celery import shared_task

from operations.tasks import TASK_OPTIONS

logger = logging.getLogger(__name__)


@shared_task(name="companies.tasks.reconcile", **TASK_OPTIONS)
def reconcile_task() -> dict:
    from companies.codat_import import mirror_reconcile

    return mirror_reconcile()


@shared_task(name="companies.tasks.reconcile_company", **TASK_OPTIONS)
def reconcile_company_task(company_id: int) -> None:
    from companies.codat_import import company_reconcile
    from companies.models import Company
    from operations.limiter import LimiterBusy

    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        logger.info("companies.reconcile_company.missing", extra={"company": company_id})
        return
    try:
        company_reconcile(company=company)
    except LimiterBusy as busy:
        # Reads are not durable work: the next reconcile run picks this company first again.
        logger.info("companies.reconcile_company.deferred", extra={"wait": busy.permit.wait})
