"""The mirror from Codat's side: import every company, and heal what a missed webhook left stale.

Reads, not changes: nothing here is an operation row. A read that the fleet limiter defers is
simply read again on the next run (the stalest companies go first). What an answer says was
observed when it arrived: a webhook generated after that moment still applies over it, an older
one does not.
"""

from django.db.models import F, Max
from django.utils import timezone

from companies.models import Company
from companies.services import (
    company_mirror_from_codat,
    connection_mirror_from_codat,
    data_status_mirror_from_codat,
    pull_operation_mirror_from_codat,
)
from core.codat_client import codat_client
from operations import limiter


def companies_import_from_codat(*, page_size: int = 500) -> int:
    """Mirror every company Codat has (with its products and connections). Returns the count."""
    client = codat_client()
    count = 0
    page = 1
    while True:
        with limiter.slot(company_id=None):
            body = client.list_companies(page=page, page_size=page_size)
        observed_at = timezone.now()
        limiter.observe(client.last_rate_limit)
        for data in body.get("results") or ():
            company_mirror_from_codat(data=data, observed_at=observed_at)
            count += 1
        if not (body.get("_links") or {}).get("next"):
            return count
        page += 1


def company_reconcile(*, company: Company, history_pages: int = 1) -> None:
    """Mirror one company's connections, data status and recent pull history from Codat."""
    client = codat_client()
    codat_id = str(company.codat_id)
    with limiter.slot(company_id=codat_id):
        connections = client.list_connections(codat_id, page_size=100)
    observed_at = timezone.now()
    for data in connections.get("results") or ():
        connection_mirror_from_codat(company=company, data=data, observed_at=observed_at)
    with limiter.slot(company_id=codat_id):
        statuses = client.get_data_status(codat_id)
    data_status_mirror_from_codat(
        company=company, data_statuses=statuses, observed_at=timezone.now()
    )
    for page in range(1, history_pages + 1):
        with limiter.slot(company_id=codat_id):
            history = client.list_pull_operations(
                codat_id, page=page, page_size=100, order_by="-requested"
            )
        observed_at = timezone.now()
        for data in history.get("results") or ():
            pull_operation_mirror_from_codat(company=company, data=data, observed_at=observed_at)
        if not (history.get("_links") or {}).get("next"):
            break
    limiter.observe(client.last_rate_limit)


def companies_import_with_details_from_codat() -> int:
    """Mirror every company at Codat, then each one's connections, data status and history.

    For a first import (a new deployment, the demo); afterwards the reconciler keeps it fresh.
    """
    imported = companies_import_from_codat()
    for company in Company.objects.filter(codat_deleted_at__isnull=True):
        company_reconcile(company=company)
    return imported


def companies_mirrored_longest_ago(*, limit: int) -> list[int]:
    """Companies whose data status was mirrored longest ago (or never), first `limit`."""
    return list(
        Company.objects.annotate(status_mirrored=Max("data_type_statuses__mirrored_at"))
        .order_by(F("status_mirrored").asc(nulls_first=True), "id")
        .values_list("pk", flat=True)[:limit]
    )


def mirror_reconcile(*, companies_per_run: int = 200) -> dict[str, int]:
    """Heal the mirror from Codat (a missed webhook): all companies and their products, then
    connections, data status and history for the companies mirrored longest ago."""
    imported = companies_import_from_codat()
    from companies.tasks import reconcile_company_task
    from operations.tasks import QUEUE

    stalest = companies_mirrored_longest_ago(limit=companies_per_run)
    for company_id in stalest:
        reconcile_company_task.apply_async((company_id,), queue=QUEUE)
    return {"imported": imported, "companies_queued": len(stalest)}
