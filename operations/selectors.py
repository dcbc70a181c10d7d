"""Read-side questions about operations, jobs and data freshness."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from companies.models import DataTypeStatus
from operations.models import ACTIVE_STATES, Job, Operation, OperationState
from products.models import CompanyProduct, CompanyProductStatus, ProductDataType, ScheduleKind

# -- jobs -------------------------------------------------------------------------------------


def job_progress(*, job: Job) -> dict:
    """Counts by state and how far the job has come (one aggregate query)."""
    counts = dict.fromkeys(OperationState.values, 0)
    for row in Operation.objects.filter(job=job).values("state").annotate(n=Count("id")):
        counts[row["state"]] = row["n"]
    total = sum(counts.values())
    live = sum(counts[state] for state in ACTIVE_STATES)
    finished = total - live
    return {
        "total": total,
        "finished": finished,
        "live": live,
        "percent": round(100 * finished / total, 1) if total else 100.0,
        "done": live == 0,
        "counts": counts,
        "cancelled_at": job.cancelled_at.isoformat() if job.cancelled_at else None,
    }


def job_failures(*, job: Job, limit: int = 200):
    return (
        Operation.objects.filter(job=job, state=OperationState.FAILED)
        .select_related("company")
        .order_by("company__name", "id")[:limit]
    )


# -- freshness --------------------------------------------------------------------------------


def next_read_due(*, schedule_kind: str, schedule_time, after: datetime) -> datetime | None:
    """When the product's schedule next reads after `after` (None: no schedule)."""
    if schedule_kind == ScheduleKind.HOURLY:
        return after + timedelta(hours=1)
    if schedule_kind == ScheduleKind.DAILY and schedule_time is not None:
        candidate = after.astimezone(UTC).replace(
            hour=schedule_time.hour, minute=schedule_time.minute, second=0, microsecond=0
        )
        if candidate <= after:
            candidate += timedelta(days=1)
        return candidate
    return None


@dataclass(frozen=True)
class FreshnessItem:
    company_id: int
    company_name: str
    product_name: str
    schedule: str
    data_type: str
    last_successful_sync: datetime | None
    next_due: datetime | None
    stale: bool

    @property
    def overdue_by(self) -> timedelta | None:
        if self.next_due is None:
            return None
        return max(timedelta(0), timezone.now() - self.next_due)


def freshness(*, now: datetime | None = None, stale_only: bool = False) -> Iterator[FreshnessItem]:
    """Every company x active product x data type, with when its next read is due.

    The next read is due one schedule period after the last successful sync (or after the
    product became active, if it never synced). It is stale when it is overdue by more than
    CODAT_RATE_LIMIT_FRESHNESS_GRACE_MINUTES, whether or not anything failed.
    """
    now = now or timezone.now()
    grace = timedelta(minutes=settings.CODAT_RATE_LIMIT_FRESHNESS_GRACE_MINUTES)
    assignments = list(
        CompanyProduct.objects.filter(status=CompanyProductStatus.ACTIVE)
        .exclude(product__schedule_kind=ScheduleKind.NONE)
        .select_related("company", "product")
        .order_by("company__name", "product__name")
    )
    types_by_product: dict[int, list[str]] = {}
    for product_id, data_type in ProductDataType.objects.filter(
        product_id__in={a.product_id for a in assignments}
    ).values_list("product_id", "data_type_id"):
        types_by_product.setdefault(product_id, []).append(data_type)
    last_sync = {
        (company_id, data_type): synced
        for company_id, data_type, synced in DataTypeStatus.objects.filter(
            company_id__in={a.company_id for a in assignments}
        ).values_list("company_id", "data_type_id", "last_successful_sync")
    }
    for assignment in assignments:
        product = assignment.product
        for data_type in sorted(types_by_product.get(product.pk, ())):
            synced = last_sync.get((assignment.company_id, data_type))
            due = next_read_due(
                schedule_kind=product.schedule_kind,
                schedule_time=product.schedule_time,
                after=synced or assignment.status_changed_at,
            )
            stale = due is not None and now > due + grace
            if stale_only and not stale:
                continue
            yield FreshnessItem(
                company_id=assignment.company_id,
                company_name=assignment.company.name,
                product_name=product.name,
                schedule=product.schedule_display,
                data_type=data_type,
                last_successful_sync=synced,
                next_due=due,
                stale=stale,
            )
