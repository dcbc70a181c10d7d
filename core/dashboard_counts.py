"""The dashboard's whole-book counts too slow for every page, counted by a periodic task.

Read freshness joins every product read status with its assignment (690,000 rows at 100,000
companies, 0.2-0.35 s) and consent coverage checks every stored consent against its product's
required data types (0.2-0.35 s); the jobs in flight count every operation of each live job
(300,000 in the bench's three 100,000-company jobs, 0.07-0.25 s); the webhook lag takes two
percentiles over the day's applied events (98,000, 0.07-0.1 s). No index removes these. The
beat task
(`core.tasks.count_dashboard_figures`, every COUNT_EVERY_SECONDS) stores them in Redis with
the moment they were counted, and the dashboard shows that moment on their cards. A count
older than GOOD_FOR, or taken before the last midnight UTC (its "due by midnight" is another
day's), is not used: the dashboard then counts live, as it does when Redis or beat is down, so
a figure is never older than GOOD_FOR without saying so.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from consent.selectors import ProductCoverageCounts, consent_coverage_by_product
from core.redis_connection import redis_client
from operations.models import Job
from operations.selectors import (
    JobInFlight,
    ProductFreshness,
    freshness_by_product,
    jobs_in_flight,
    next_utc_midnight,
)
from products.models import Product
from webhooks.selectors import WebhookLag, webhook_lag

logger = logging.getLogger(__name__)

KEY = "dashboard:whole-book-counts"
COUNT_EVERY_SECONDS = 60
GOOD_FOR = timedelta(seconds=3 * COUNT_EVERY_SECONDS)


@dataclass(frozen=True)
class DashboardCounts:
    counted_at: datetime
    freshness: list[ProductFreshness]
    coverage: list[ProductCoverageCounts]
    jobs: tuple[int, list[JobInFlight]]  # as jobs_in_flight() returns them
    webhook_lag: WebhookLag  # over LAG_WINDOW before counted_at


def _coverage_row(item: ProductCoverageCounts) -> dict:
    return {
        "product_id": item.product.pk,
        "product_name": item.product.name,
        "granted": item.granted,
        "asked": item.asked,
        "withdrawn": item.withdrawn,
        "missing": item.missing,
    }


def _coverage_from(row: dict) -> ProductCoverageCounts:
    # The figure needs the product's id and name only; an unsaved Product carries them.
    product = Product(pk=row["product_id"], name=row["product_name"])
    return ProductCoverageCounts(
        product=product,
        granted=row["granted"],
        asked=row["asked"],
        withdrawn=row["withdrawn"],
        missing=row["missing"],
    )


def _job_row(item: JobInFlight) -> dict:
    return {
        "id": item.job.pk,
        "description": item.job.description,
        "created_at": item.job.created_at.isoformat(),
        "total": item.total,
        "finished": item.finished,
    }


def _job_from(row: dict) -> JobInFlight:
    # The figure needs the job's id, description and creation time; an unsaved Job carries them.
    job = Job(
        pk=row["id"],
        description=row["description"],
        created_at=datetime.fromisoformat(row["created_at"]),
    )
    return JobInFlight(job=job, total=row["total"], finished=row["finished"])


LAG_WINDOW = timedelta(hours=24)


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _duration(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


def _lag_row(lag: WebhookLag) -> dict:
    return {
        "since": lag.since.isoformat(),
        "events": lag.events,
        "p50": _seconds(lag.p50),
        "p95": _seconds(lag.p95),
        "hourly": [(hour.isoformat(), _seconds(value)) for hour, value in lag.hourly],
        "hourly_measure": lag.hourly_measure,
    }


def _lag_from(row: dict) -> WebhookLag:
    return WebhookLag(
        since=datetime.fromisoformat(row["since"]),
        events=row["events"],
        p50=_duration(row["p50"]),
        p95=_duration(row["p95"]),
        hourly=[(datetime.fromisoformat(hour), _duration(value)) for hour, value in row["hourly"]],
        hourly_measure=row["hourly_measure"],
    )


def count_dashboard_figures(*, now: datetime | None = None) -> DashboardCounts:
    """Count read freshness, consent coverage, the jobs in flight and the webhook lag now, and
    store them."""
    now = now or timezone.now()
    counts = DashboardCounts(
        counted_at=now,
        freshness=freshness_by_product(now=now),
        coverage=consent_coverage_by_product(now=now),
        jobs=jobs_in_flight(),
        webhook_lag=webhook_lag(window=LAG_WINDOW, now=now),
    )
    payload = {
        "counted_at": now.isoformat(),
        "freshness": [asdict(row) for row in counts.freshness],
        "coverage": [_coverage_row(item) for item in counts.coverage],
        "jobs_count": counts.jobs[0],
        "jobs": [_job_row(item) for item in counts.jobs[1]],
        "webhook_lag": _lag_row(counts.webhook_lag),
    }
    redis_client().set(KEY, json.dumps(payload), ex=int(GOOD_FOR.total_seconds()))
    return counts


def stored_dashboard_counts(*, now: datetime) -> DashboardCounts | None:
    """The periodic count if it is recent enough to show at `now`, else None."""
    try:
        raw = redis_client().get(KEY)
    except Exception:  # Redis down: the dashboard counts live
        logger.warning("dashboard.counts_unreadable", exc_info=True)
        return None
    if not raw:
        return None
    data = json.loads(raw)
    counted_at = datetime.fromisoformat(data["counted_at"])
    if not (now - GOOD_FOR <= counted_at <= now):
        return None
    if next_utc_midnight(counted_at) != next_utc_midnight(now):
        return None
    return DashboardCounts(
        counted_at=counted_at,
        freshness=[ProductFreshness(**row) for row in data["freshness"]],
        coverage=[_coverage_from(row) for row in data["coverage"]],
        jobs=(data["jobs_count"], [_job_from(row) for row in data["jobs"]]),
        webhook_lag=_lag_from(data["webhook_lag"]),
    )
