"""The admin home's dashboard: the integration's health at a glance.

Each figure comes from a selector of the app that owns its tables and links to the filtered
list behind it; this module only puts them together for one staff member (a figure whose list
they may not view is left out, so its queries are not run) and works out the charts' geometry.
The charts are inline SVG and CSS drawn here, on the server: no script and no CDN, so the
portal works offline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from companies.models import DATASET_ERROR_STATUSES
from companies.selectors import companies_by_connection_status, failing_reads_by_reason
from consent.selectors import Coverage, consent_coverage_by_product
from core.dashboard_counts import LAG_WINDOW, stored_dashboard_counts
from operations import selectors as operations_selectors
from operations.limiter import QuotaSource
from operations.models import ACTIVE_STATES
from webhooks.models import EventState
from webhooks.selectors import WebhookLag, events_in_state_count, webhook_lag

# The permission each figure's list asks for (core.roles gives every role the view ones).
PERMISSIONS = {
    "connections": "companies.view_company",
    "failing": "companies.view_datatypestatus",
    "freshness": "operations.view_operation",
    "quota": "operations.view_operation",
    "webhooks": "webhooks.view_webhookevent",
    "consent": "consent.view_companyconsent",
    "jobs": "operations.view_job",
}


def _url(name: str, **query) -> str:
    url = reverse(name)
    return f"{url}?{urlencode(query)}" if query else url


def duration_text(value: timedelta | None) -> str:
    """A lag in the unit people read it in: "0.4 s", "12 s", "3.5 min", "2.1 h"."""
    if value is None:
        return "none"
    seconds = value.total_seconds()
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass(frozen=True)
class Bar:
    """One labelled count with its share of a whole (the width of its bar) and its list."""

    label: str
    count: int
    percent: float
    url: str
    tone: str = ""
    title: str = ""


def _share(count: int, whole: int) -> float:
    return round(100 * count / whole, 1) if whole else 0.0


CONNECTION_TONES = {
    "Linked": "good",
    "PendingAuth": "wait",
    "Deauthorized": "bad",
    "Unlinked": "quiet",
    "": "quiet",
}


def connections_figure() -> dict:
    total, rows = companies_by_connection_status()
    changelist = "admin:companies_company_changelist"
    bars = [
        Bar(
            label=row.label,
            count=row.companies,
            percent=_share(row.companies, total),
            url=_url(changelist, connection_status=row.status or "none"),
            tone=CONNECTION_TONES.get(row.status, ""),
        )
        for row in rows
    ]
    return {"total": total, "url": _url(changelist), "bars": bars}


def failing_figure(*, freshness: list | None, stale_url: str | None) -> dict:
    failing = failing_reads_by_reason()
    changelist = "admin:companies_datatypestatus_changelist"
    bars = [
        Bar(
            label=label,
            count=count,
            percent=_share(count, failing.total),
            url=_url(changelist, current_status__exact=status),
            tone="bad",
        )
        for status, label, count in failing.by_status
    ]
    per_product = []
    if freshness is not None and stale_url:
        per_product = [
            {
                "name": item.product_name,
                "failing": item.failing,
                "url": f"{stale_url}?{urlencode({'failing': 1, 'product': item.product_id})}",
            }
            for item in freshness
            if item.failing
        ]
    return {
        "total": failing.total,
        "url": _url(changelist, current_status__in=",".join(sorted(DATASET_ERROR_STATUSES))),
        "bars": bars,
        "reasons": [
            {
                "label": reason.label,
                "message": reason.message,
                "count": reason.count,
                "url": _url(changelist, current_status__exact=reason.status),
            }
            for reason in failing.top_reasons
        ],
        "per_product": per_product,
    }


def freshness_figure(freshness: list, stale_url: str) -> dict:
    rows = [
        {
            "name": item.product_name,
            "schedule": item.schedule,
            "scheduled": item.scheduled,
            "stale": item.stale,
            "failing": item.failing,
            "stale_percent": _share(item.stale, item.scheduled),
            "stale_url": f"{stale_url}?{urlencode({'product': item.product_id})}",
            "scheduled_url": f"{stale_url}?{urlencode({'all': 1, 'product': item.product_id})}",
            "failing_url": f"{stale_url}?{urlencode({'failing': 1, 'product': item.product_id})}",
        }
        for item in freshness
    ]
    return {
        "rows": rows,
        "stale": sum(item.stale for item in freshness),
        "scheduled": sum(item.scheduled for item in freshness),
        "url": stale_url,
    }


QUOTA_SOURCE_TEXT = {
    QuotaSource.CONFIGURED: "the limit configured for the portal (CODAT_RATE_LIMIT_PER_DAY)",
    QuotaSource.REPORTED: "the limit Codat reported today",
    QuotaSource.ESTIMATED: (
        "an estimate from Codat's formula, 1,000 x (1 + companies with a linked connection),"
        " until Codat reports its own figure"
    ),
    QuotaSource.UNKNOWN: "not known yet",
}


def quota_figure(now: datetime, freshness: list | None = None) -> dict:
    forecast = operations_selectors.quota_forecast(now=now, freshness=freshness)
    queued_url = _url(
        "admin:operations_operation_changelist",
        state__in=",".join(ACTIVE_STATES),
        next_attempt_at__lt=forecast.midnight.isoformat(),
    )
    return {
        "quota": forecast,
        "source_text": QUOTA_SOURCE_TEXT[forecast.source],
        "gauge_used": min(100.0, forecast.used_percent or 0.0),
        "gauge_forecast": min(100.0, forecast.forecast_percent or 0.0),
        "queued_url": queued_url,
        "hours_left": round((forecast.midnight - now).total_seconds() / 3600, 1),
    }


# The sparkline's box, in SVG user units (it scales with the card).
SPARK_WIDTH, SPARK_HEIGHT = 240, 48


def sparkline_points(values: list[float | None]) -> str:
    """SVG polyline points for `values` (None: no events that hour, drawn at zero)."""
    if not values:
        return ""
    top = max((value for value in values if value is not None), default=0) or 1
    step = SPARK_WIDTH / max(1, len(values) - 1)
    return " ".join(
        f"{index * step:.1f},{SPARK_HEIGHT - 2 - (SPARK_HEIGHT - 4) * (value or 0) / top:.1f}"
        for index, value in enumerate(values)
    )


def webhooks_figure(now: datetime, lag: WebhookLag | None = None) -> dict:
    lag = lag or webhook_lag(window=LAG_WINDOW, now=now)
    ledger = "admin:webhooks_webhookevent_changelist"
    by_hour = dict(lag.hourly)
    # From the lag's own start: a stored count's hours are those before it was counted.
    first_hour = lag.since.replace(minute=0, second=0, microsecond=0)
    window_hours = int(LAG_WINDOW / timedelta(hours=1))
    hours = [first_hour + timedelta(hours=index) for index in range(window_hours + 1)]
    values = [by_hour[hour].total_seconds() if hour in by_hour else None for hour in hours]
    slowest = max((value for value in values if value is not None), default=None)
    return {
        "lag": lag,
        "p50": duration_text(lag.p50),
        "p95": duration_text(lag.p95),
        "window_hours": window_hours,
        "applied_url": _url(
            ledger, state__exact=EventState.APPLIED, received_at__gte=lag.since.isoformat()
        ),
        "sparkline": sparkline_points(values) if slowest is not None else "",
        "spark_width": SPARK_WIDTH,
        "spark_height": SPARK_HEIGHT,
        "spark_top": duration_text(timedelta(seconds=slowest)) if slowest is not None else "",
        "quarantined": events_in_state_count(EventState.QUARANTINED),
        "quarantined_url": _url(ledger, state__exact=EventState.QUARANTINED),
        "waiting": events_in_state_count(EventState.RECEIVED),
        "waiting_url": _url(ledger, state__exact=EventState.RECEIVED),
    }


COVERAGE_TONES = {
    Coverage.GRANTED: "good",
    Coverage.ASKED: "wait",
    Coverage.WITHDRAWN: "bad",
    Coverage.MISSING: "quiet",
}


def consent_figure(coverage: list) -> dict:
    changelist = "admin:consent_companyconsent_changelist"
    rows = []
    for item in coverage:
        counts = {
            Coverage.GRANTED: item.granted,
            Coverage.ASKED: item.asked,
            Coverage.WITHDRAWN: item.withdrawn,
            Coverage.MISSING: item.missing,
        }
        rows.append(
            {
                "name": item.product.name,
                "total": item.total,
                "bars": [
                    Bar(
                        label=coverage.label,
                        count=count,
                        percent=_share(count, item.total),
                        url=_url(changelist, coverage=f"{item.product.pk}.{coverage.value}"),
                        tone=COVERAGE_TONES[coverage],
                    )
                    for coverage, count in counts.items()
                ],
            }
        )
    return {"rows": rows, "legend": [(c.label, COVERAGE_TONES[c]) for c in Coverage]}


def jobs_figure(counted: tuple | None = None) -> dict:
    count, jobs = counted or operations_selectors.jobs_in_flight()
    return {
        "count": count,
        "jobs": [
            {
                "description": item.job.description,
                "url": reverse("admin:operations_job_change", args=[item.job.pk]),
                "finished": item.finished,
                "total": item.total,
                "percent": item.percent,
                "created_at": item.job.created_at,
            }
            for item in jobs
        ],
        "url": reverse("admin:operations_job_changelist"),
    }


# The figures whose whole-book counts the periodic task stores (core/dashboard_counts.py).
STORED_FIGURES = {"freshness", "consent", "jobs", "webhooks"}


@dataclass
class Dashboard:
    generated_at: datetime
    figures: dict = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.figures)


def dashboard_for(user, *, now: datetime | None = None) -> Dashboard:
    """The figures `user` may see, each computed in the database in a fixed number of queries
    whatever the number of companies, events and operations."""
    now = now or timezone.now()
    allowed = {name for name, permission in PERMISSIONS.items() if user.has_perm(permission)}
    dashboard = Dashboard(generated_at=now)
    freshness = stale_url = None
    # The whole-book counts of the periodic task when recent (core/dashboard_counts.py), else
    # counted for this page; the cards they feed show when they were counted.
    stored = stored_dashboard_counts(now=now) if allowed & STORED_FIGURES else None
    counted_at = stored.counted_at if stored else None
    if "freshness" in allowed:
        freshness = (
            stored.freshness if stored else operations_selectors.freshness_by_product(now=now)
        )
        stale_url = reverse("admin:operations_operation_stale")
    if "connections" in allowed:
        dashboard.figures["connections"] = connections_figure()
    if "failing" in allowed:
        dashboard.figures["failing"] = failing_figure(freshness=freshness, stale_url=stale_url)
    if freshness is not None:
        dashboard.figures["freshness"] = freshness_figure(freshness, stale_url)
        # The periodic count's moment, shown on the card (its links list the rows as of now).
        dashboard.figures["freshness"]["counted_at"] = counted_at
    if "quota" in allowed:
        dashboard.figures["quota"] = quota_figure(now, freshness)
    if "webhooks" in allowed:
        dashboard.figures["webhooks"] = webhooks_figure(now, stored.webhook_lag if stored else None)
        dashboard.figures["webhooks"]["counted_at"] = counted_at
    if "consent" in allowed:
        coverage = stored.coverage if stored else consent_coverage_by_product(now=now)
        dashboard.figures["consent"] = consent_figure(coverage)
        dashboard.figures["consent"]["counted_at"] = counted_at
    if "jobs" in allowed:
        dashboard.figures["jobs"] = jobs_figure(stored.jobs if stored else None)
        dashboard.figures["jobs"]["counted_at"] = counted_at
    return dashboard
