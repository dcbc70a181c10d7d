"""Finding the webhooks Codat never delivered: its data status against the ledger.

For each company and each data type of its active products, Codat's `lastSuccessfulSync` says
when a read last finished. Every such read is followed by a read.completed event, so the mirror's
`last_event_at` (the newest read event applied) should not be older. When it is, and the read
finished long enough ago for Svix to have delivered, the gap is written to the ledger as a missed
event, once (its webhook id is derived from the sync), and the mirror is brought up to date from
the data status.
"""

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from codat.errors import CodatError
from companies.codat_times import InvalidCodatTime, parse_optional_codat_datetime
from core.codat_client import codat_client
from core.redis_connection import redis_client
from operations import limiter
from webhooks.models import EventState, WebhookEvent

log = logging.getLogger(__name__)

# Svix delivers within seconds when the endpoint is up; leave room for a few retries.
DELIVERY_GRACE = timedelta(minutes=30)


def companies_to_reconcile():
    from companies.models import Company
    from products.models import CompanyProductStatus

    return (
        Company.objects.filter(
            codat_deleted_at__isnull=True,
            product_assignments__status=CompanyProductStatus.ACTIVE,
        )
        .distinct()
        .order_by("pk")
    )


def missed_events_reconcile_company(
    *, company, data_statuses: dict, now: datetime | None = None
) -> int:
    """Record the gaps for one company given Codat's `dataStatus` answer, which arrived at `now`;
    how many were new."""
    from companies.services import data_status_mirror_from_codat
    from products.models import CompanyProductStatus, ProductDataType

    now = now or timezone.now()
    expected = set(
        ProductDataType.objects.filter(
            product__assignments__company=company,
            product__assignments__status=CompanyProductStatus.ACTIVE,
        ).values_list("data_type_id", flat=True)
    )
    last_events = dict(company.data_type_statuses.values_list("data_type_id", "last_event_at"))
    new_rows = 0
    with transaction.atomic():
        for data_type, status in data_statuses.items():
            if data_type not in expected or not isinstance(status, dict):
                continue
            try:
                finished = parse_optional_codat_datetime(
                    status.get("lastSuccessfulSync"), field="lastSuccessfulSync"
                )
            except InvalidCodatTime:
                continue
            if finished is None or finished > now - DELIVERY_GRACE:
                continue
            last_event = last_events.get(data_type)
            if last_event is not None and last_event >= finished:
                continue
            sync_id = status.get("latestSuccessfulSyncId") or finished.isoformat()
            _, created = WebhookEvent.objects.get_or_create(
                webhook_id=f"missed:{company.codat_id}:{data_type}:{sync_id}"[:255],
                defaults={
                    "event_type": "read.completed",
                    "generated_at": finished,
                    "company": company,
                    "company_codat_id": company.codat_id,
                    "state": EventState.MISSED,
                    "state_reason": (
                        f"Codat finished reading {data_type} at {finished.isoformat()} "
                        f"(sync {sync_id}); the newest read event in the ledger is "
                        f"{last_event.isoformat() if last_event else 'none'}."
                    ),
                },
            )
            new_rows += int(created)
        data_status_mirror_from_codat(company=company, data_statuses=data_statuses, observed_at=now)
    return new_rows


RECONCILE_CURSOR_KEY = "webhooks:reconcile_missed_events:after_company"


def missed_events_reconcile_next(*, limit: int = 50) -> int:
    """Compare Codat's data status with the ledger for the next `limit` companies; how many
    missed events were recorded.

    Each run costs one Codat call per company, from the same daily quota as everything else, so
    it takes a slice and remembers where it stopped; successive runs go round all companies.
    """
    after = int(redis_client().get(RECONCILE_CURSOR_KEY) or 0)
    companies = list(companies_to_reconcile().filter(pk__gt=after)[:limit])
    if len(companies) < limit:
        # Wrapped round: start again from the first company.
        companies += list(companies_to_reconcile().filter(pk__lte=after)[: limit - len(companies)])
    client = codat_client()
    missed = 0
    for company in companies:
        try:
            # Through the fleet's limiter, like every Codat call: it also waits out a pause.
            with limiter.slot(company_id=str(company.codat_id)):
                statuses = client.get_data_status(str(company.codat_id))
        except limiter.LimiterBusy:
            log.info("webhooks.reconcile.limited")
            break
        except CodatError as error:
            log.warning("webhooks.reconcile.codat_error", extra={"company": company.pk})
            if error.is_transient:
                break
            continue
        missed += missed_events_reconcile_company(company=company, data_statuses=statuses)
        redis_client().set(RECONCILE_CURSOR_KEY, company.pk)
    return missed
