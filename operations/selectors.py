"""Read-side questions about operations, jobs and data freshness."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from companies.models import (
    DATASET_ERROR_STATUSES,
    Company,
    Connection,
    ConnectionStatus,
    ProductReadStatus,
)
from operations import limiter
from operations.models import ACTIVE_STATES, Job, Operation, OperationState
from products.models import CompanyProductStatus, Product, ScheduleKind

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


def stale_before(*, schedule_kind: str, schedule_time, now: datetime, grace: timedelta):
    """The time a product's read must have counted from to be stale now (None: never stale).

    A read counting from `due_from` is due at `next_read_due(after=due_from)` and stale once
    that is more than `grace` ago. For an hourly schedule that is `due_from` before
    now - grace - 1 h; for a daily one, `due_from` before the last scheduled time that lies more
    than `grace` ago (the read that time should have made never counted). One threshold per
    product turns "stale" into an index range scan on `due_from`.
    """
    cutoff = now - grace
    if schedule_kind == ScheduleKind.HOURLY:
        return cutoff - timedelta(hours=1)
    if schedule_kind == ScheduleKind.DAILY and schedule_time is not None:
        last = cutoff.astimezone(UTC).replace(
            hour=schedule_time.hour, minute=schedule_time.minute, second=0, microsecond=0
        )
        if last >= cutoff:
            last -= timedelta(days=1)
        return last
    return None


def _grace() -> timedelta:
    return timedelta(minutes=settings.CODAT_RATE_LIMIT_FRESHNESS_GRACE_MINUTES)


def _stale_condition(now: datetime, *, prefix: str = "") -> Q:
    """Rows of ProductReadStatus (reached through `prefix`) stale at `now`; never true when no
    product has a schedule."""
    return _due_condition(now, grace=_grace(), prefix=prefix)


def _due_condition(moment: datetime, *, grace: timedelta, prefix: str = "") -> Q:
    """Rows of ProductReadStatus whose next scheduled read is due more than `grace` before
    `moment` (with no grace: due before `moment`). One query for the products' schedules."""
    condition = Q(pk__in=[])
    for product in Product.objects.exclude(schedule_kind=ScheduleKind.NONE).only(
        "pk", "schedule_kind", "schedule_time"
    ):
        threshold = stale_before(
            schedule_kind=product.schedule_kind,
            schedule_time=product.schedule_time,
            now=moment,
            grace=grace,
        )
        if threshold is not None:
            condition |= Q(
                **{f"{prefix}product_id": product.pk, f"{prefix}due_from__lt": threshold}
            )
    return condition


def scheduled_reads():
    """Every company x active product with a schedule x data type, as ProductReadStatus rows."""
    return (
        ProductReadStatus.objects.filter(assignment__status=CompanyProductStatus.ACTIVE)
        .exclude(product__schedule_kind=ScheduleKind.NONE)
        .order_by("due_from", "pk")
    )


def stale_reads(*, now: datetime | None = None):
    """The scheduled reads overdue by more than CODAT_RATE_LIMIT_FRESHNESS_GRACE_MINUTES, most
    overdue first, whether or not anything failed: counted per product, so another product's
    read of the same data type does not make it fresh."""
    return scheduled_reads().filter(_stale_condition(now or timezone.now()))


def failing_reads():
    """Every company x active product x data type whose last read for that product ended in an
    error (DATASET_ERROR_STATUSES), scheduled or not: the reads `freshness_by_product` counts
    as failing."""
    return ProductReadStatus.objects.filter(
        assignment__status=CompanyProductStatus.ACTIVE, last_status__in=DATASET_ERROR_STATUSES
    ).order_by("due_from", "pk")


@dataclass(frozen=True)
class FreshnessItem:
    """One row of the stale/scheduled reads pages, worked out for the rows shown only."""

    company_id: int
    company_name: str
    product_name: str
    schedule: str
    data_type: str
    last_status: str
    last_successful_read: datetime | None
    next_due: datetime | None
    stale: bool

    @property
    def overdue_by(self) -> timedelta | None:
        if self.next_due is None:
            return None
        return max(timedelta(0), timezone.now() - self.next_due)


def freshness_items(rows, *, now: datetime | None = None) -> list[FreshnessItem]:
    """The page's rows (a slice of `scheduled_reads()` or `stale_reads()`), with when each read
    is next due and whether it is stale, in two queries whatever the book's size."""
    now = now or timezone.now()
    grace = _grace()
    items = []
    for row in rows.select_related("assignment__company", "product"):
        product = row.product
        due = next_read_due(
            schedule_kind=product.schedule_kind,
            schedule_time=product.schedule_time,
            after=row.due_from,
        )
        items.append(
            FreshnessItem(
                company_id=row.assignment.company_id,
                company_name=row.assignment.company.name,
                product_name=product.name,
                schedule=product.schedule_display,
                data_type=row.data_type_id,
                last_status=row.get_last_status_display() if row.last_status else "",
                last_successful_read=row.last_successful_read,
                next_due=due,
                stale=due is not None and now > due + grace,
            )
        )
    return items


@dataclass(frozen=True)
class ProductFreshness:
    """How one product's scheduled reads stand, across the book or for one company."""

    product_id: int
    product_name: str
    schedule: str
    scheduled: int
    stale: int
    failing: int
    # Scheduled reads due before the next midnight UTC (stale ones included): the quota
    # forecast's figure, counted in the same pass over the reads.
    due_by_midnight: int = 0


def freshness_by_product(*, company=None, now: datetime | None = None) -> list[ProductFreshness]:
    """Per product with active assignments: data types read on its schedule, how many are stale
    and how many last ended in an error: one aggregate query (the dashboard, a company page)."""
    now = now or timezone.now()
    rows = ProductReadStatus.objects.filter(assignment__status=CompanyProductStatus.ACTIVE)
    if company is not None:
        rows = rows.filter(assignment__company=company)
    counts = (
        rows.order_by()
        .values("product_id")
        .annotate(
            scheduled=Count("pk"),
            stale=Count("pk", filter=_stale_condition(now)),
            failing=Count("pk", filter=Q(last_status__in=DATASET_ERROR_STATUSES)),
            due_by_midnight=Count(
                "pk", filter=_due_condition(next_utc_midnight(now), grace=timedelta(0))
            ),
        )
    )
    products = {
        product.pk: product
        for product in Product.objects.filter(pk__in=[row["product_id"] for row in counts])
    }
    return sorted(
        (
            ProductFreshness(
                product_id=row["product_id"],
                product_name=products[row["product_id"]].name,
                schedule=products[row["product_id"]].schedule_display,
                scheduled=row["scheduled"]
                if products[row["product_id"]].schedule_kind != ScheduleKind.NONE
                else 0,
                stale=row["stale"],
                failing=row["failing"],
                due_by_midnight=row["due_by_midnight"],
            )
            for row in counts
        ),
        key=lambda item: item.product_name,
    )


# -- jobs in flight ---------------------------------------------------------------------------


@dataclass(frozen=True)
class JobInFlight:
    job: Job
    total: int
    finished: int

    @property
    def percent(self) -> float:
        return round(100 * self.finished / self.total, 1) if self.total else 100.0


def jobs_in_flight(*, limit: int = 8) -> tuple[int, list[JobInFlight]]:
    """How many jobs still have operations pending or running, and the newest `limit` of them
    with their progress. Two aggregate queries whatever the number of jobs and rows."""
    # Each job is asked whether it has a live operation through the (job, state) index, and
    # only those jobs are counted: grouping every job with every operation and then keeping the
    # live ones read the whole operation table (0.19 s at 300,000 operations).
    has_live = Exists(
        Operation.objects.filter(job=OuterRef("pk"), state__in=ACTIVE_STATES).order_by()
    )
    jobs = (
        Job.objects.filter(has_live)
        .annotate(
            # Counting the state (never null) rather than the id lets the counts come from the
            # (job, state) index alone.
            _total=Count("operations__state"),
            _finished=Count("operations__state", filter=~Q(operations__state__in=ACTIVE_STATES)),
        )
        .order_by("-created_at", "-id")
    )
    count = Job.objects.filter(has_live).count()
    shown = [
        JobInFlight(job=job, total=job._total, finished=job._finished)
        for job in jobs.select_related("product")[:limit]
    ]
    return count, shown


# -- today's Codat quota ----------------------------------------------------------------------

# The portal's own periodic reads of Codat, per hour (portal/schedules.py): the mirror
# reconciler every 30 minutes lists every company (pages of 500) and re-reads the 200 stalest
# companies, 3 calls each (companies/codat_import.py); the missed-event reconciler reads 50
# companies' data status an hour (webhooks/reconciliation.py); the consumer list is read hourly.
MIRROR_RECONCILES_PER_HOUR = 2
MIRROR_RECONCILE_COMPANIES = 200
MIRROR_RECONCILE_CALLS_PER_COMPANY = 3
COMPANY_LIST_PAGE_SIZE = 500
MISSED_EVENT_COMPANIES_PER_HOUR = 50
CONSUMER_LISTS_PER_HOUR = 1


def periodic_calls_per_hour(*, company_count: int) -> int:
    """The Codat calls the portal's beat tasks make in an hour for a book of `company_count`."""
    list_pages = max(1, -(-company_count // COMPANY_LIST_PAGE_SIZE))
    reconciled = min(company_count, MIRROR_RECONCILE_COMPANIES)
    return (
        MIRROR_RECONCILES_PER_HOUR * (list_pages + reconciled * MIRROR_RECONCILE_CALLS_PER_COMPANY)
        + min(company_count, MISSED_EVENT_COMPANIES_PER_HOUR)
        + CONSUMER_LISTS_PER_HOUR
    )


def daily_quota_formula(*, linked_companies: int) -> int:
    """Codat's daily limit: 1,000 x (1 + companies with an active (linked) connection)."""
    return 1000 * (1 + linked_companies)


def linked_company_count() -> int:
    """Companies with at least one linked connection (Codat's "active connected companies"):
    distinct ids of the connections, not DISTINCT over every column of the companies."""
    return (
        Connection.objects.filter(status=ConnectionStatus.LINKED)
        .values("company_id")
        .distinct()
        .count()
    )


def next_utc_midnight(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(
        days=1
    )


@dataclass(frozen=True)
class QuotaForecast:
    """Today's Codat calls against the daily limit, and where they will stand at midnight UTC.

    `limit` is None when nothing says what it is yet. The forecast adds the operations due
    before midnight (one call each; retries not foreseen) and the portal's periodic reads;
    scheduled reads are Codat's own work, shown but not counted (they cost no API call).
    """

    used: int | None
    limit: int | None
    source: limiter.QuotaSource
    queued: int
    periodic: int
    scheduled_reads: int
    midnight: datetime

    @property
    def forecast(self) -> int | None:
        if self.used is None:
            return None
        return self.used + self.queued + self.periodic

    @property
    def is_estimate(self) -> bool:
        return self.source in (limiter.QuotaSource.ESTIMATED, limiter.QuotaSource.UNKNOWN)

    @property
    def used_percent(self) -> float | None:
        return _percent(self.used, self.limit)

    @property
    def forecast_percent(self) -> float | None:
        return _percent(self.forecast, self.limit)

    @property
    def over_limit(self) -> bool:
        return bool(self.limit and self.forecast is not None and self.forecast > self.limit)


def _percent(part: int | None, whole: int | None) -> float | None:
    if part is None or not whole:
        return None
    return round(100 * part / whole, 1)


def operations_due_before(moment: datetime):
    """Operations still to call Codat (pending or running) whose attempt is due before
    `moment`: the queued work of the quota forecast."""
    return Operation.objects.filter(state__in=ACTIVE_STATES, next_attempt_at__lt=moment)


def scheduled_reads_due_before(moment: datetime):
    """Scheduled reads whose next run is due before `moment` (overdue ones included)."""
    return scheduled_reads().filter(_due_condition(moment, grace=timedelta(0)))


def quota_forecast(
    *, now: datetime | None = None, freshness: list[ProductFreshness] | None = None
) -> QuotaForecast:
    """Today's quota and the forecast to midnight UTC: a few queries and one Redis round trip,
    whatever the number of companies and operations. Without Redis the counts still show.
    `freshness` (freshness_by_product over the whole book at the same `now`) saves counting
    the scheduled reads again: the dashboard has it already."""
    now = now or timezone.now()
    midnight = next_utc_midnight(now)
    try:
        quota = limiter.daily_quota(now)
    except Exception:
        quota = None
    used = quota.used if quota else None
    limit = quota.limit if quota else None
    source = quota.source if quota else limiter.QuotaSource.UNKNOWN
    if limit is None:
        limit = daily_quota_formula(linked_companies=linked_company_count())
        source = limiter.QuotaSource.ESTIMATED
    hours_left = (midnight - now).total_seconds() / 3600
    return QuotaForecast(
        used=used,
        limit=limit,
        source=source,
        queued=operations_due_before(midnight).count(),
        periodic=round(periodic_calls_per_hour(company_count=Company.objects.count()) * hours_left),
        scheduled_reads=scheduled_reads_due_before(midnight).count()
        if freshness is None
        else sum(item.due_by_midnight for item in freshness),
        midnight=midnight,
    )
