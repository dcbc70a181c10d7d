"""Benchmark: the admin's company page for a company with a short and a very long history.

    DATABASE_URL=postgres://... .venv/bin/python bench/company_page.py [--operations 100000]
        [--events 100000] [--consent 5000] [--pulls 50000] [--renders 30]

Two companies with the same products, consent and data types: one with three operations, webhook
events, consent events and pulls, one with the numbers given. Each page is rendered --renders
times in this process (Django's test client, as a logged-in staff member) after three warm-up
renders. Printed per company: the number of queries and p50/p95/max render time. The goal is
the same number of queries for both and p95 < 300 ms for the long history (the target the next
issue holds every page to). Exit status 1 when a goal is missed.

Database: DATABASE_URL must be PostgreSQL (a scratch database `<name>_bench` is created,
migrated and dropped, as bench/webhook_ingest.py does).
"""

import argparse
import os
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.webhook_ingest import scratch_database  # noqa: E402

BATCH = 5_000


def build_companies(args):
    """The catalogue, and a company with a short and one with a long history. Returns both."""
    from django.db import connection
    from django.utils import timezone

    from companies.models import Company, DataTypeStatus, ProductReadStatus, PullOperation
    from companies.services import product_reads_follow
    from consent.models import ConsentEvent
    from consent.services import consent_text_publish, current_consent_refold
    from operations.models import Operation
    from products.models import CompanyProduct, Product, ProductDataType
    from webhooks.models import WebhookEvent

    now = timezone.now()
    lending = Product.objects.create(
        identifier="bench-lending", name="Lending", kind="standard", schedule_kind="hourly"
    )
    feeds = Product.objects.create(identifier="bench-feeds", name="Bank feeds", kind="custom")
    types = ["invoices", "bills", "customers", "suppliers", "balanceSheet", "profitAndLoss"]
    for data_type in types:
        ProductDataType.objects.create(product=lending, data_type_id=data_type)
    ProductDataType.objects.create(product=feeds, data_type_id="bankAccounts")
    text = consent_text_publish(product=lending)

    def company_with_history(name: str, operations: int, events: int, consent: int, pulls: int):
        company = Company.objects.create(
            codat_id=uuid.uuid4(), name=name, redirect="https://link.codat.io/company/x"
        )
        for product in (lending, feeds):
            CompanyProduct.objects.create(
                company=company, product=product, status="active", status_changed_at=now
            )
        product_reads_follow(CompanyProduct.objects.filter(company=company))
        ProductReadStatus.objects.filter(assignment__company=company).update(
            last_status="Complete", last_successful_read=now, due_from=now
        )
        DataTypeStatus.objects.bulk_create(
            DataTypeStatus(company=company, data_type_id=data_type, current_status="Complete")
            for data_type in types
        )

        def minutes_ago(n: int):
            return now - timedelta(minutes=n)

        Operation.objects.bulk_create(
            (
                Operation(
                    kind="refresh_product",
                    company=company,
                    product=lending,
                    state="failed" if n % 7 == 0 else "succeeded",
                    attempts=1,
                    last_error="Codat answered 503" if n % 7 == 0 else "",
                    next_attempt_at=minutes_ago(n),
                    dedupe_key=f"bench:{company.pk}:{n}",
                )
                for n in range(operations)
            ),
            batch_size=BATCH,
        )
        WebhookEvent.objects.bulk_create(
            (
                WebhookEvent(
                    webhook_id=f"msg_{uuid.uuid4().hex}",
                    event_type="lending.read.completed",
                    company=company,
                    company_codat_id=company.codat_id,
                    state="applied",
                    body="{}",
                )
                for _ in range(events)
            ),
            batch_size=BATCH,
        )
        # created_at and received_at are set on insert: spread them over the past, one minute
        # apart, as a real history is.
        with connection.cursor() as cursor:
            for table, column in (
                ("operations_operation", "created_at"),
                ("webhooks_webhookevent", "received_at"),
            ):
                cursor.execute(
                    f"UPDATE {table} SET {column} = %s - id * interval '1 minute'"
                    " WHERE company_id = %s",
                    [now, company.pk],
                )
        ConsentEvent.objects.bulk_create(
            (
                ConsentEvent(
                    company=company,
                    product=lending,
                    action="grant",
                    data_types=types,
                    text=text,
                    text_hash=text.content_hash,
                    channel="system",
                    occurred_at=minutes_ago(10 * n),
                )
                for n in range(consent)
            ),
            batch_size=BATCH,
        )
        current_consent_refold(company_ids=[company.pk])
        PullOperation.objects.bulk_create(
            (
                PullOperation(
                    codat_id=uuid.uuid4(),
                    company=company,
                    data_type_id="invoices",
                    status="Complete",
                    requested=minutes_ago(n),
                    progress=100,
                    is_completed=True,
                )
                for n in range(pulls)
            ),
            batch_size=BATCH,
        )
        return company

    short = company_with_history("Short history Ltd", 3, 3, 3, 3)
    long = company_with_history(
        "Long history plc", args.operations, args.events, args.consent, args.pulls
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return short, long


def measure(client, company, renders: int) -> tuple[int, list[float]]:
    from django.db import connection
    from django.urls import reverse

    url = reverse("admin:companies_company_change", args=[company.pk])
    for _ in range(3):
        assert client.get(url).status_code == 200
    captured = []

    def count(execute, sql, params, many, context):
        captured.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        client.get(url)
    timings = []
    for _ in range(renders):
        started = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return len(captured), timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--consent", type=int, default=5_000)
    parser.add_argument("--pulls", type=int, default=50_000)
    parser.add_argument("--renders", type=int, default=30)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        parser.error("DATABASE_URL must name a PostgreSQL database")
    with scratch_database() as database_url:
        os.environ["DATABASE_URL"] = database_url
        os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings.test"
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.test import Client

        started = time.perf_counter()
        short, long = build_companies(args)
        print(
            f"history built in {time.perf_counter() - started:.0f} s: {args.operations:,} "
            f"operations, {args.events:,} webhook events, {args.consent:,} consent events, "
            f"{args.pulls:,} pulls"
        )
        client = Client()
        client.force_login(get_user_model().objects.create_superuser("bench", password="x"))
        results = {}
        for label, company in (("short history", short), ("long history", long)):
            queries, timings = measure(client, company, args.renders)
            p95 = statistics.quantiles(timings, n=20)[-1]
            results[label] = (queries, p95)
            print(
                f"{label}: {queries} queries, render p50 {statistics.median(timings):.0f} ms, "
                f"p95 {p95:.0f} ms, max {max(timings):.0f} ms"
            )
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        print(f"load average while measuring: {load} on {os.cpu_count()} CPUs")
        same_queries = results["short history"][0] == results["long history"][0]
        fast = results["long history"][1] < 300
        print(f"same queries: {same_queries}; long history p95 < 300 ms: {fast}")
        from django.db import connections

        connections.close_all()
        return 0 if same_queries and fast else 1


if __name__ == "__main__":
    sys.exit(main())
