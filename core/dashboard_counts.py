"""The dashboard's whole-book counts too slow for every page, counted by a periodic task.

Read freshness joins every product read status with its assignment (690,000 rows at 100,000
companies, 0.2-0.35 s) and consent coverage checks every stored consent against its product's
required data types (0.2-0.35 s); no index removes either. The beat task
(`core.tasks.count_dashboard_figures`, every COUNT_EVERY_SECONDS) stores both in Redis with
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
from operations.selectors import ProductFreshness, freshness_by_product, next_utc_midnight
from products.models import Product

logger = logging.getLogger(__name__)

KEY = "dashboard:whole-book-counts"
COUNT_EVERY_SECONDS = 60
GOOD_FOR = timedelta(seconds=3 * COUNT_EVERY_SECONDS)


@dataclass(frozen=True)
class DashboardCounts:
    counted_at: datetime
    freshness: list[ProductFreshness]
    coverage: list[ProductCoverageCounts]


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


def count_dashboard_figures(*, now: datetime | None = None) -> DashboardCounts:
    """Count read freshness and consent coverage over the whole book now, and store them."""
    now = now or timezone.now()
    counts = DashboardCounts(
        counted_at=now,
        freshness=freshness_by_product(now=now),
        coverage=consent_coverage_by_product(now=now),
    )
    payload = {
        "counted_at": now.isoformat(),
        "freshness": [asdict(row) for row in counts.freshness],
        "coverage": [_coverage_row(item) for item in counts.coverage],
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
    )
