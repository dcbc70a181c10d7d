"""The admin home's dashboard (core/dashboard.py): every figure is right for a book whose figures
are known (tests/portal/dashboard_book.py), each link lands on a list of that many rows, the
page costs the same queries for a small and a larger book, and staff see only the figures whose
lists they may view."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from consent.selectors import consent_coverage_by_product
from core import dashboard_counts
from core.dashboard_counts import (
    COUNT_EVERY_SECONDS,
    GOOD_FOR,
    count_dashboard_figures,
    stored_dashboard_counts,
)
from core.redis_connection import redis_client
from core.tasks import count_dashboard_figures_task
from operations import limiter
from operations.selectors import (
    freshness_by_product,
    jobs_in_flight,
    next_utc_midnight,
    scheduled_reads_due_before,
)
from tests.factories import StaffFactory
from tests.portal.dashboard_book import EXPECTED_PER_UNIT, LAGS, book_products, grow_book
from webhooks import selectors as webhook_selectors

pytestmark = pytest.mark.django_db

LIMITER_KEYS = (
    limiter.CONFIG_KEY,
    limiter.QUOTA_LIMIT_KEY,
    limiter.QUOTA_LIMIT_REPORTED_KEY,
)


@pytest.fixture(autouse=True)
def clean_quota(redis_url):
    """Today's counter and limits start empty (the session's Redis is shared)."""
    keys = (*LIMITER_KEYS, limiter._day_key())
    redis_client().delete(*keys)
    yield
    redis_client().delete(*keys)


@pytest.fixture
def viewer_client(client):
    client.force_login(StaffFactory(role="viewer"))
    return client


def dashboard(client):
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    return response, response.context["dashboard"].figures


def times(units: int, counts: dict) -> dict:
    return {key: value * units for key, value in counts.items()}


def test_each_figure_is_right_for_a_known_book(viewer_client):
    # given: two units of the book, 120 calls made today against a limit Codat reported
    products = book_products()
    grow_book(products, units=2)
    redis_client().set(limiter._day_key(), 120)
    redis_client().set(limiter.QUOTA_LIMIT_KEY, 9000)
    redis_client().set(limiter.QUOTA_LIMIT_REPORTED_KEY, 1)

    # when
    response, figures = dashboard(viewer_client)

    # then
    connections = figures["connections"]
    assert connections["total"] == 8
    assert {bar.label: bar.count for bar in connections["bars"]} == {
        "Linked": 4,
        "Pending authorisation": 2,
        "Deauthorized": 2,
        "No connection": 2,
    }
    failing = figures["failing"]
    assert failing["total"] == 6
    assert {bar.label: bar.count for bar in failing["bars"]} == {
        "Fetch failed": 4,
        "Authorisation failed": 2,
    }
    assert {
        (reason["label"], reason["message"]): reason["count"] for reason in failing["reasons"]
    } == {
        ("Fetch failed", EXPECTED_MESSAGES["maintenance"]): 2,
        ("Authorisation failed", EXPECTED_MESSAGES["token"]): 2,
        ("Fetch failed", ""): 2,
    }
    assert {item["name"]: item["failing"] for item in failing["per_product"]} == {
        "Lending": 2,
        "Expenses": 2,
    }
    freshness = {
        row["name"]: (row["scheduled"], row["stale"], row["failing"])
        for row in figures["freshness"]["rows"]
    }
    assert freshness == {
        name: tuple(2 * n for n in counts)
        for name, counts in EXPECTED_PER_UNIT["freshness"].items()
    }
    quota = figures["quota"]["quota"]
    assert (quota.used, quota.limit, quota.source) == (120, 9000, limiter.QuotaSource.REPORTED)
    assert not quota.is_estimate
    assert quota.queued == 4
    assert quota.forecast == 120 + 4 + quota.periodic
    assert quota.scheduled_reads >= 6  # the stale ones are due already; others may be too
    # The dashboard takes this figure from the freshness pass; counted alone it is the same.
    midnight = next_utc_midnight(response.context["dashboard"].generated_at)
    assert quota.scheduled_reads == scheduled_reads_due_before(midnight).count()
    webhooks = figures["webhooks"]
    assert webhooks["lag"].events == 6
    assert webhooks["quarantined"] == 2
    assert webhooks["waiting"] == 2
    # percentile_cont over 1, 1, 2, 2, 30, 30 seconds
    assert webhooks["lag"].p50 == timedelta(seconds=2)
    assert webhooks["lag"].p95 == timedelta(seconds=30)
    consent = {
        row["name"]: tuple(bar.count for bar in row["bars"]) for row in figures["consent"]["rows"]
    }
    assert consent == {
        name: tuple(2 * n for n in counts) for name, counts in EXPECTED_PER_UNIT["consent"].items()
    }
    jobs = figures["jobs"]
    assert jobs["count"] == 1
    (job,) = jobs["jobs"]
    assert (job["finished"], job["total"]) == (4, 8)


EXPECTED_MESSAGES = {
    "maintenance": "The platform is under maintenance; Codat will try again later.",
    "token": "The access token has expired: the customer must connect again.",
}


def _list_count(client, url: str) -> int:
    response = client.get(url)
    assert response.status_code == 200, url
    if "cl" in response.context:
        return response.context["cl"].result_count
    return response.context["count"]  # the stale/scheduled/failing reads page


def test_every_link_lands_on_a_list_of_as_many_rows_as_the_figure_says(viewer_client):
    grow_book(book_products(), units=1)
    response, figures = dashboard(viewer_client)
    html = unescape(response.content.decode())

    links = []
    for key in ("connections", "failing"):
        links += [(bar.url, bar.count) for bar in figures[key]["bars"]]
    links.append((figures["connections"]["url"], figures["connections"]["total"]))
    links.append((figures["failing"]["url"], figures["failing"]["total"]))
    links += [(item["url"], item["failing"]) for item in figures["failing"]["per_product"]]
    for row in figures["freshness"]["rows"]:
        links += [
            (row["stale_url"], row["stale"]),
            (row["scheduled_url"], row["scheduled"]),
            (row["failing_url"], row["failing"]),
        ]
    links.append((figures["freshness"]["url"], figures["freshness"]["stale"]))
    links.append((figures["quota"]["queued_url"], figures["quota"]["quota"].queued))
    webhooks = figures["webhooks"]
    links += [
        (webhooks["applied_url"], webhooks["lag"].events),
        (webhooks["quarantined_url"], webhooks["quarantined"]),
        (webhooks["waiting_url"], webhooks["waiting"]),
    ]
    for row in figures["consent"]["rows"]:
        links += [(bar.url, bar.count) for bar in row["bars"]]
    links.append((figures["jobs"]["url"], None))

    for url, count in links:
        assert f'href="{url}"' in html, url
        if count is not None:
            assert _list_count(viewer_client, url) == count, url
    # Each job in flight links to its own page.
    for job in figures["jobs"]["jobs"]:
        assert f'href="{job["url"]}"' in html
        assert viewer_client.get(job["url"]).status_code == 200


def test_the_home_page_costs_the_same_queries_for_a_small_and_a_larger_book(viewer_client):
    products = book_products()
    grow_book(products, units=1)
    viewer_client.get(reverse("admin:index"))  # sessions, content types: warmed once

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = viewer_client.get(reverse("admin:index"))
        assert response.status_code == 200
        return len(captured)

    small = queries()
    grow_book(products, units=6)
    large = queries()

    assert small == large, (small, large)
    _, figures = dashboard(viewer_client)
    assert figures["connections"]["total"] == 7 * EXPECTED_PER_UNIT["companies"]


def test_the_limit_is_called_an_estimate_until_codat_reports_one(viewer_client):
    grow_book(book_products(), units=1)
    # The sweeper's estimate from Codat's formula, never confirmed by a response.
    limiter.set_daily_quota_estimate(3000)

    response, figures = dashboard(viewer_client)

    quota = figures["quota"]["quota"]
    assert (quota.limit, quota.source, quota.is_estimate) == (
        3000,
        limiter.QuotaSource.ESTIMATED,
        True,
    )
    assert b"(estimated limit)" in response.content
    assert b"an estimate from Codat&#x27;s formula" in response.content


def test_without_any_figure_in_redis_the_limit_is_codats_formula_over_the_mirror(viewer_client):
    grow_book(book_products(), units=1)  # two companies with a linked connection

    _, figures = dashboard(viewer_client)

    quota = figures["quota"]["quota"]
    assert (quota.used, quota.limit, quota.is_estimate) == (0, 3000, True)


def test_a_configured_limit_is_not_an_estimate_and_a_forecast_past_it_is_flagged(
    viewer_client, settings
):
    grow_book(book_products(), units=1)
    settings.CODAT_RATE_LIMIT_PER_DAY = 100
    redis_client().set(limiter._day_key(), 99)

    response, figures = dashboard(viewer_client)

    quota = figures["quota"]["quota"]
    assert (quota.limit, quota.source, quota.is_estimate) == (
        100,
        limiter.QuotaSource.CONFIGURED,
        False,
    )
    assert quota.over_limit
    assert b"over the limit" in response.content
    assert b"(estimated limit)" not in response.content


def test_the_codat_reported_limit_is_marked_as_such_by_the_limiter(redis_url):
    from codat.rate_limit_headers import RateLimit

    limiter.set_daily_quota_estimate(3000)
    assert limiter.daily_quota().source == limiter.QuotaSource.ESTIMATED

    limiter.observe(
        RateLimit.from_headers({"X-Rate-Limit-Limit": "7000", "X-Rate-Limit-Remaining": "6990"})
    )

    assert limiter.daily_quota() == limiter.DailyQuota(
        used=10, limit=7000, source=limiter.QuotaSource.REPORTED
    )


def test_the_lag_percentiles_are_the_databases_and_the_sqlite_fallback_agrees(monkeypatch):
    grow_book(book_products(), units=1)
    now = timezone.now()

    in_use = webhook_selectors.webhook_lag(now=now)
    monkeypatch.setattr(webhook_selectors, "_has_percentile_cont", lambda: False)
    nearest_rank = webhook_selectors.webhook_lag(now=now)

    # 1, 2 and 30 seconds: the median is 2 s either way; percentile_cont interpolates the p95
    # between the two slowest, the nearest rank is the slowest.
    assert in_use.p50 == nearest_rank.p50 == timedelta(seconds=LAGS[1])
    if connection.vendor == "postgresql":
        assert timedelta(seconds=2) < in_use.p95 < timedelta(seconds=30)
        assert in_use.hourly_measure == "p95"
    assert nearest_rank.p95 == timedelta(seconds=30)
    assert [value for _, value in nearest_rank.hourly] == [timedelta(seconds=11)]
    assert nearest_rank.hourly_measure == "mean"


def test_a_viewer_sees_every_figure_and_the_models_under_them(viewer_client):
    response, figures = dashboard(viewer_client)

    assert set(figures) == {
        "connections",
        "failing",
        "freshness",
        "quota",
        "webhooks",
        "consent",
        "jobs",
    }
    assert b'id="dashboard"' in response.content
    assert b"Companies (Codat mirror)" in response.content


def test_figures_whose_lists_the_user_may_not_view_are_left_out(client):
    # given: staff allowed to view companies and nothing else
    staff = StaffFactory()
    staff.user_permissions.add(Permission.objects.get(codename="view_company"))
    client.force_login(staff)

    # when
    response, figures = dashboard(client)

    # then
    assert set(figures) == {"connections"}
    html = response.content.decode()
    assert 'id="dash-connections"' in html
    for hidden in ("failing", "freshness", "quota", "webhooks", "consent", "jobs"):
        assert f'id="dash-{hidden}"' not in html


def test_staff_without_any_view_permission_get_no_dashboard(client):
    client.force_login(StaffFactory())

    response, figures = dashboard(client)

    assert figures == {}
    assert b'id="dashboard"' not in response.content


def test_the_stale_page_filters_by_product_and_answers_404_for_an_unknown_one(viewer_client):
    products = book_products()
    grow_book(products, units=1)
    stale = reverse("admin:operations_operation_stale")

    lending = viewer_client.get(stale, {"product": products["Lending"].pk})
    unknown = viewer_client.get(stale, {"product": 999999})
    junk = viewer_client.get(stale, {"product": "abc"})

    assert lending.context["count"] == 4
    assert {item.product_name for item in lending.context["items"]} == {"Lending"}
    assert b"Stale reads: Lending" in lending.content
    assert (unknown.status_code, junk.status_code) == (404, 404)


def test_links_on_the_stale_page_keep_its_filters_across_pages(viewer_client, settings):
    products = book_products()
    grow_book(products, units=26)  # 104 stale Lending reads: two pages
    stale = reverse("admin:operations_operation_stale")

    response = viewer_client.get(stale, {"product": products["Lending"].pk})

    assert response.context["count"] == 104
    next_links = re.findall(r'href="\?([^"]*p=2)"', response.content.decode())
    assert next_links == [f"product={products['Lending'].pk}&amp;p=2"]


@pytest.fixture
def stored_count_forgotten():
    """The stored count lives in Redis, which is not emptied between tests: other tests' pages
    must count live."""
    yield
    redis_client().delete(dashboard_counts.KEY)


def _freshness_counts(figures) -> dict:
    return {
        row["name"]: (row["scheduled"], row["stale"], row["failing"])
        for row in figures["freshness"]["rows"]
    }


def _coverage_counts(figures) -> dict:
    return {
        row["name"]: tuple(bar.count for bar in row["bars"]) for row in figures["consent"]["rows"]
    }


def _per_unit(units: int) -> dict:
    return {
        name: tuple(units * n for n in counts)
        for name, counts in EXPECTED_PER_UNIT["freshness"].items()
    }


def test_freshness_and_consent_come_from_the_periodic_count_with_its_time_until_too_old(
    viewer_client, stored_count_forgotten
):
    # given: the periodic count taken over one unit of the book, then the book grows
    products = book_products()
    grow_book(products, units=1)
    _, live_at_one_unit = dashboard(viewer_client)
    counted = count_dashboard_figures()
    grow_book(products, units=1)

    # when: the dashboard is read within GOOD_FOR of the count
    with CaptureQueriesContext(connection) as captured:
        response, figures = dashboard(viewer_client)

    # then: the figures are the count's, with its time on the card, and the 690,000-row join
    # behind them is not run for the page
    assert _freshness_counts(figures) == _per_unit(1)
    assert _coverage_counts(figures) == _coverage_counts(live_at_one_unit)
    assert figures["freshness"]["counted_at"] == counted.counted_at
    assert figures["consent"]["counted_at"] == counted.counted_at
    assert figures["jobs"]["counted_at"] == counted.counted_at
    assert figures["jobs"]["count"] == live_at_one_unit["jobs"]["count"] > 0
    assert figures["jobs"]["jobs"] == live_at_one_unit["jobs"]["jobs"]
    assert figures["webhooks"]["counted_at"] == counted.counted_at
    stored_lag, live_lag = figures["webhooks"]["lag"], live_at_one_unit["webhooks"]["lag"]
    assert stored_lag.since == counted.counted_at - timedelta(hours=24)
    assert (stored_lag.events, stored_lag.p50, stored_lag.p95, stored_lag.hourly) == (
        live_lag.events,
        live_lag.p50,
        live_lag.p95,
        live_lag.hourly,
    )
    assert figures["webhooks"]["sparkline"] == live_at_one_unit["webhooks"]["sparkline"]
    counted_text = "ounted at " + counted.counted_at.strftime("%H:%M:%S")
    assert response.content.decode().count(counted_text) == 4
    assert not any("companies_productreadstatus" in q["sql"] for q in captured.captured_queries)
    assert not any("consent_currentconsent" in q["sql"] for q in captured.captured_queries)
    assert not any("operations_job" in q["sql"] for q in captured.captured_queries)

    # when: the count is older than GOOD_FOR (beat stopped), the page counts as it is now
    count_dashboard_figures(now=timezone.now() - GOOD_FOR - timedelta(seconds=1))
    response, figures = dashboard(viewer_client)

    # then
    assert _freshness_counts(figures) == _per_unit(2)
    assert sum(map(sum, _coverage_counts(figures).values())) > sum(
        map(sum, _coverage_counts(live_at_one_unit).values())
    )
    assert figures["freshness"]["counted_at"] is None
    assert figures["consent"]["counted_at"] is None
    assert figures["jobs"]["count"] > live_at_one_unit["jobs"]["count"]
    assert figures["jobs"]["counted_at"] is None
    assert figures["webhooks"]["counted_at"] is None
    assert "Counted at" not in response.content.decode()


def test_the_count_task_is_scheduled_every_minute_and_stores_what_the_selector_counts(
    viewer_client, stored_count_forgotten
):
    from portal.schedules import periodic_tasks

    (entry,) = [
        task for task in periodic_tasks() if task["task"] == "core.tasks.count_dashboard_figures"
    ]
    assert entry["every"] == COUNT_EVERY_SECONDS
    grow_book(book_products(), units=1)

    count_dashboard_figures_task()

    stored = stored_dashboard_counts(now=timezone.now())
    assert stored is not None
    assert stored.freshness == freshness_by_product(now=stored.counted_at)
    live = consent_coverage_by_product(now=stored.counted_at)
    assert [(c.product.pk, c.product.name, c.total) for c in stored.coverage] == [
        (c.product.pk, c.product.name, c.total) for c in live
    ]
    live_lag = webhook_selectors.webhook_lag(now=stored.counted_at)
    assert (stored.webhook_lag.events, stored.webhook_lag.p95) == (live_lag.events, live_lag.p95)
    count, jobs = jobs_in_flight()
    assert stored.jobs[0] == count
    assert [(j.job.pk, j.job.description, j.total, j.finished) for j in stored.jobs[1]] == [
        (j.job.pk, j.job.description, j.total, j.finished) for j in jobs
    ]
