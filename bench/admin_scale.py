"""The admin at a bank's scale: p50, p95 and query count of every page an operator uses, at 1,000
and at 100,000 companies (issue 14). Goal: p95 under 300 ms, and the same query count at both.

Each size has its own PostgreSQL database holding a book built by `manage.py seed_scale`
(portal/scale_book.py): BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/portal_bench)
for the large book, the same name with `_small` appended for the small one. A book of the right
size is reused; otherwise the database is created (or emptied) and the book built, which takes a
minute or two for 100,000 companies. Each page is fetched with Django's test client as a
superuser, once to warm up and then `--runs` times; the time is the server's (no network).

Usage (a fresh clone: `make test` once for the venv, then):
    .venv/bin/python bench/admin_scale.py [--large 100000] [--small 1000] [--runs 15]
        [--only company] [--rebuild]

Adding a line: append (label, target) to LINES. A target is a URL (a str, formatted with the
book's `Landmarks` fields, e.g. "/admin/operations/job/{big_job}/change/") or a callable
(client, landmarks) -> response for pages reached by a POST (the bulk actions).
Background work (reconcilers, sweeper) goes into BACKGROUND: (label, callable(landmarks)).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/portal_bench"


@dataclass
class Landmarks:
    """Rows of the book the lines point at."""

    product: int  # the product of the book's largest add job
    other_product: int  # a product many companies hold
    big_job: int  # the job with the most operations
    search: str  # a word of many company names
    company: int  # a company with a long history


# -- the lines -----------------------------------------------------------------------------


def _bulk_action(action: str, **fields):
    """The confirmation page of a company-list action over every company (select across)."""

    def post(client, marks: Landmarks):
        data = {"action": action, "select_across": "1", "index": "0", "_selected_action": ["1"]}
        data.update({k: v.format(**asdict(marks)) for k, v in fields.items()})
        return client.post("/admin/companies/company/", data)

    return post


def _bulk_review(action: str, **fields):
    """The "review what will happen" page over every company: the confirmation's form (built
    once, not timed) posted back with the operator's choice."""
    prepared = {}

    def post(client, marks: Landmarks):
        if "data" not in prepared:
            form = _bulk_action(action)(client, marks).context["form"]
            data = {name: form[name].value() for name in form.fields}
            data.update({k: v.format(**asdict(marks)) for k, v in fields.items()})
            prepared["data"] = {k: v for k, v in data.items() if v is not None}
        return client.post("/admin/companies/company/operations/confirm/", prepared["data"])

    return post


LINES: list[tuple[str, object]] = [
    ("dashboard (admin home)", "/admin/"),
    ("company page (long history)", "/admin/companies/company/{company}/change/"),
    ("stale reads", "/admin/operations/operation/stale/"),
    ("scheduled reads (all)", "/admin/operations/operation/stale/?all=1"),
    ("failing reads", "/admin/operations/operation/stale/?failing=1"),
    ("company list", "/admin/companies/company/"),
    (
        "company list, by connection status",
        "/admin/companies/company/?connection_status=Linked",
    ),
    ("company list, by product", "/admin/companies/company/?product={other_product}"),
    (
        "company list, by data-type status",
        "/admin/companies/company/?data_type_status=FetchError",
    ),
    ("company list, search by name", "/admin/companies/company/?q={search}"),
    ("company list, sorted by last sync", "/admin/companies/company/?o=-6"),
    ("operation list", "/admin/operations/operation/"),
    ("operation list, failed", "/admin/operations/operation/?state__exact=failed"),
    ("operation list, by kind", "/admin/operations/operation/?kind__exact=refresh_product"),
    ("operation list, by product", "/admin/operations/operation/?product__id__exact={product}"),
    ("operation list, one company", "/admin/operations/operation/?company__id__exact={company}"),
    ("job list", "/admin/operations/job/"),
    ("job page (largest job)", "/admin/operations/job/{big_job}/change/"),
    ("job progress JSON (largest job)", "/admin/operations/job/{big_job}/progress.json"),
    ("webhook event list", "/admin/webhooks/webhookevent/"),
    ("webhook event list, by state", "/admin/webhooks/webhookevent/?state__exact=superseded"),
    (
        "webhook event list, by type",
        "/admin/webhooks/webhookevent/?event_type__exact=read.completed",
    ),
    (
        "webhook event list, one company",
        "/admin/webhooks/webhookevent/?company__id__exact={company}",
    ),
    ("consent event list", "/admin/consent/consentevent/"),
    ("consent event list, by product", "/admin/consent/consentevent/?product__id__exact={product}"),
    ("consent request list", "/admin/consent/consentrequest/"),
    ("company consent list", "/admin/consent/companyconsent/"),
    ("company consent page", "/admin/consent/companyconsent/{company}/change/"),
    ("bulk add: confirmation (all companies)", _bulk_action("add_product_action")),
    ("bulk add: review (all companies)", _bulk_review("add_product_action", product="{product}")),
    ("bulk remove: confirmation (all companies)", _bulk_action("remove_product_action")),
    (
        "bulk remove: review (all companies)",
        _bulk_review("remove_product_action", product="{product}"),
    ),
    ("bulk refresh: confirmation (all companies)", _bulk_action("refresh_action")),
    (
        "bulk refresh: review (all companies)",
        _bulk_review("refresh_action", kind="refresh_all_data"),
    ),
]


def _consent_reconcile(marks: Landmarks) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from consent.services import consent_reconcile

    with CaptureQueriesContext(connection) as captured:
        counts = consent_reconcile()
    return {**counts, "queries": len(captured)}


def _operations_sweep(marks: Landmarks) -> dict:
    """One sweeper pass, its Celery sends left out (the book's pending rows are not to be run);
    it still stamps the rows it would send."""
    from unittest import mock

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from operations.sweeper import operations_sweep

    with (
        mock.patch("operations.queue.enqueue", lambda ids, countdown=None: None),
        CaptureQueriesContext(connection) as captured,
    ):
        counts = operations_sweep()
    return {**counts, "queries": len(captured)}


def _consent_reconcile_with_policy(marks: Landmarks) -> dict:
    """A pass with a 10-day reconfirmation policy, so that the book's older grants lapse and
    their expiries are written; rolled back, so the book stays as built."""
    from django.conf import settings
    from django.db import transaction

    class RollBack(Exception):
        pass

    previous = settings.CONSENT_RECONFIRM_AFTER_DAYS
    settings.CONSENT_RECONFIRM_AFTER_DAYS = 10
    try:
        with transaction.atomic():
            figures = _consent_reconcile(marks)
            raise RollBack
    except RollBack:
        return figures
    finally:
        settings.CONSENT_RECONFIRM_AFTER_DAYS = previous


def _mirror_reconcile_choice(marks: Landmarks) -> dict:
    """The mirror reconciler's choice of the companies mirrored longest ago (its Codat calls,
    the company list import, are left out: no Codat here)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from companies.codat_import import companies_mirrored_longest_ago

    with CaptureQueriesContext(connection) as captured:
        chosen = companies_mirrored_longest_ago(limit=200)
    return {"companies": len(chosen), "queries": len(captured)}


def _missed_events_slice(marks: Landmarks) -> dict:
    """The missed-event reconciliation's next slice of 50 companies (from the middle of the
    book), without its Codat calls."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from webhooks.reconciliation import companies_to_reconcile

    with CaptureQueriesContext(connection) as captured:
        chosen = list(companies_to_reconcile().filter(pk__gt=marks.company)[:50])
    return {"companies": len(chosen), "queries": len(captured)}


# Background work at the book's size: (label, callable(landmarks)), timed once each.
BACKGROUND: list[tuple[str, object]] = [
    ("consent_reconcile (one pass)", _consent_reconcile),
    ("consent_reconcile (10-day policy, rolled back)", _consent_reconcile_with_policy),
    ("mirror reconciler (choice of 200 companies)", _mirror_reconcile_choice),
    ("missed-event reconciliation (next 50 companies)", _missed_events_slice),
    ("operations sweeper (one pass, no sends)", _operations_sweep),
]


# -- one size, in its own process (Django binds to one database per process) -----------------


def landmarks() -> Landmarks:
    from django.db.models import Count

    from operations.models import Job, Operation

    big_job = (
        Job.objects.filter(kind="add_product")
        .annotate(n=Count("operations"))
        .order_by("-n", "id")
        .first()
    )
    # The busiest company among those holding a product (its page then shows every section).
    busy = (
        Operation.objects.filter(company__product_assignments__status="active")
        .values("company_id")
        .annotate(n=Count("id", distinct=True))
        .order_by("-n", "company_id")
        .first()
    )
    from products.models import CompanyProduct

    other = (
        CompanyProduct.objects.values("product_id").annotate(n=Count("id")).order_by("-n").first()
    )
    return Landmarks(
        product=big_job.product_id,
        other_product=other["product_id"],
        big_job=big_job.pk,
        search="Harbour",
        company=busy["company_id"],
    )


def measure(client, target, marks: Landmarks, runs: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def fetch():
        if callable(target):
            return target(client, marks)
        return client.get(target.format(**asdict(marks)))

    response = fetch()  # warm-up: caches, the first plan
    if response.status_code != 200:
        return {"error": f"HTTP {response.status_code}"}
    times = []
    queries = 0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = fetch()
            times.append(time.perf_counter() - started)
        queries = len(captured)
    times.sort()
    return {
        "p50": statistics.median(times),
        "p95": times[max(0, round(0.95 * len(times)) - 1)],
        "queries": queries,
        "bytes": len(response.content),
    }


def run_size(size: int, url: str, runs: int, only: str, rebuild: bool) -> dict:
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings.test"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # The job page reads the limiter's pause from Redis; nothing is written there.
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment

    from companies.models import Company

    call_command("migrate", verbosity=0)
    built = None
    if rebuild or Company.objects.count() != size:
        if Company.objects.exists():
            _empty_database(url)
            call_command("migrate", verbosity=0)
        started = time.monotonic()
        call_command("seed_scale", companies=size, stdout=sys.stderr)
        built = time.monotonic() - started
    setup_test_environment()
    # The sweeper's pass (BACKGROUND) leaves the day's quota estimate in Redis; without this the
    # next size's dashboard would read it and skip counting linked companies (one query less).
    from operations import limiter

    limiter.redis_client().delete(limiter.QUOTA_LIMIT_KEY, limiter.QUOTA_LIMIT_REPORTED_KEY)
    # The dashboard's whole-book counts are taken by a beat task every minute
    # (core/dashboard_counts.py); count them for this book as beat would, not timed.
    from core.dashboard_counts import count_dashboard_figures

    count_dashboard_figures()
    user, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    marks = landmarks()
    results = {"built_seconds": built, "lines": {}, "background": {}}
    for label, target in LINES:
        if only and only not in label:
            continue
        try:
            results["lines"][label] = measure(client, target, marks, runs)
        except Exception as error:  # one broken page must not hide the others' figures
            results["lines"][label] = {"error": f"{type(error).__name__}: {error}"[:200]}
        print(f"  [{size:,}] {label}: {results['lines'][label]}", file=sys.stderr)
    for label, job in BACKGROUND:
        if only and only not in label:
            continue
        started = time.perf_counter()
        try:
            figures = job(marks)
        except Exception as error:
            figures = {"error": f"{type(error).__name__}: {error}"[:200]}
        results["background"][label] = {"seconds": time.perf_counter() - started, **figures}
    return results


def _empty_database(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if exists.fetchone() is None:
            connection.execute(f'CREATE DATABASE "{name}"')


# -- the table ---------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--only", default="", help="only the lines whose label contains this")
    parser.add_argument("--rebuild", action="store_true", help="build the books again")
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)  # one size, in a child
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.size:
        results = run_size(args.size, args.url, args.runs, args.only, args.rebuild)
        print(json.dumps(results))
        return 0

    large_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    if not large_url.startswith("postgres"):
        print("bench/admin_scale.py needs PostgreSQL (BENCH_DATABASE_URL)", file=sys.stderr)
        return 2
    small_url = large_url + "_small"
    by_size = {}
    for size, url in ((args.small, small_url), (args.large, large_url)):
        ensure_database(url)
        command = [sys.executable, __file__, "--size", str(size), "--url", url]
        command += ["--runs", str(args.runs), "--only", args.only]
        command += ["--rebuild"] if args.rebuild else []
        output = subprocess.run(command, check=True, capture_output=False, stdout=subprocess.PIPE)
        by_size[size] = json.loads(output.stdout.decode().strip().splitlines()[-1])

    small, large = by_size[args.small], by_size[args.large]
    width = max(len(label) for label in large["lines"]) if large["lines"] else 20
    print(
        f"\n{'page':<{width}}  {args.small:>7,}: p50 / p95 ms  queries"
        f"  {args.large:>7,}: p50 / p95 ms  queries   goal"
    )
    failures = 0
    for label, big in large["lines"].items():
        little = small["lines"].get(label, {})
        if "error" in big or "error" in little:
            print(f"{label:<{width}}  {little.get('error', '')} {big.get('error', '')}")
            failures += 1
            continue
        ok = big["p95"] < 0.3 and big["queries"] == little["queries"]
        failures += not ok
        print(
            f"{label:<{width}}  {little['p50'] * 1000:>7.0f} / {little['p95'] * 1000:>5.0f}"
            f"  {little['queries']:>7}  {big['p50'] * 1000:>7.0f} / {big['p95'] * 1000:>5.0f}"
            f"  {big['queries']:>7}   {'ok' if ok else 'MISSED'}"
        )
    for label, figures in large["background"].items():
        little = small["background"].get(label, {})
        print(
            f"{label}: {args.small:,}: {json.dumps(little)}  {args.large:,}: {json.dumps(figures)}"
        )
    for size, results in by_size.items():
        if results["built_seconds"]:
            print(f"book of {size:,} companies built in {results['built_seconds']:.0f} s")
    print(f"\n{failures} line(s) missed the goal (p95 < 300 ms, equal query counts).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
