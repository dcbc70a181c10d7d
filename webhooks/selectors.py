"""Read-side questions about the webhook ledger (the dashboard's figures)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Aggregate, Avg, Count, DurationField, ExpressionWrapper, F
from django.db.models.functions import TruncHour
from django.utils import timezone

from webhooks.models import EventState, WebhookEvent


class PercentileCont(Aggregate):
    """PostgreSQL's percentile_cont(fraction) WITHIN GROUP (ORDER BY expression); Django has
    no built-in for ordered-set aggregates. An interval in, an interval out."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = DurationField()

    def __init__(self, expression, *, fraction: float, **extra):
        # A float of the code's own, never user input: safe to place in the SQL.
        super().__init__(expression, fraction=float(fraction), **extra)


def _lag():
    return ExpressionWrapper(F("processed_at") - F("received_at"), output_field=DurationField())


def applied_events_since(moment: datetime):
    """Events applied to the mirror that were received from `moment` on: the lag's sample."""
    return WebhookEvent.objects.filter(
        state=EventState.APPLIED, received_at__gte=moment, processed_at__isnull=False
    ).order_by()


@dataclass(frozen=True)
class WebhookLag:
    """Receipt to applied, over the events applied since `since`."""

    since: datetime
    events: int
    p50: timedelta | None
    p95: timedelta | None
    # Per hour, oldest first: (hour, the hour's p95 on PostgreSQL, its mean on SQLite).
    hourly: list[tuple[datetime, timedelta]]
    hourly_measure: str


def _has_percentile_cont() -> bool:
    return connection.vendor == "postgresql"


def _nearest_rank(events, fraction: float, count: int) -> timedelta | None:
    """The nearest-rank percentile, read by the database with ORDER BY ... OFFSET: for SQLite,
    which has no percentile function (`make run` may use it)."""
    if not count:
        return None
    offset = max(0, math.ceil(fraction * count) - 1)
    return events.annotate(lag=_lag()).order_by("lag").values_list("lag", flat=True)[offset]


def webhook_lag(*, window: timedelta = timedelta(hours=24), now=None) -> WebhookLag:
    """How long applied events took from receipt to applied: p50 and p95 over `window`, and
    the hourly series for the sparkline, computed in the database (percentile_cont on
    PostgreSQL; nearest rank and hourly means on SQLite). At most four queries."""
    now = now or timezone.now()
    since = now - window
    events = applied_events_since(since)
    hourly_rows = events.annotate(hour=TruncHour("received_at")).values("hour")
    if _has_percentile_cont():
        summary = events.aggregate(
            # received_at (never null) rather than the id: webhook_event_state_recent holds
            # every column asked for, so the rows themselves are not read.
            events=Count("received_at"),
            p50=PercentileCont(_lag(), fraction=0.5),
            p95=PercentileCont(_lag(), fraction=0.95),
        )
        count, p50, p95 = summary["events"], summary["p50"], summary["p95"]
        hourly = hourly_rows.annotate(value=PercentileCont(_lag(), fraction=0.95))
        measure = "p95"
    else:
        count = events.count()
        p50 = _nearest_rank(events, 0.5, count)
        p95 = _nearest_rank(events, 0.95, count)
        hourly = hourly_rows.annotate(value=Avg(_lag()))
        measure = "mean"
    return WebhookLag(
        since=since,
        events=count,
        p50=p50,
        p95=p95,
        hourly=[(row["hour"], row["value"]) for row in hourly.order_by("hour")],
        hourly_measure=measure,
    )


def events_in_state_count(state: str) -> int:
    return WebhookEvent.objects.filter(state=state).count()
