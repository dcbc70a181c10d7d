"""One fleet limit for workers on several hosts: three `celery worker` processes, each with its own
hostname as if on its own machine, add a product to a few hundred companies through one sandbox
that answers 429 above its per-minute limit.

The run has more calls than the sandbox allows in a minute, so only a limiter shared by the three
workers (operations/limiter.py, in Redis) keeps them under it: a per-process limit would let the
three together send three times the budget. The sandbox's own record of calls then shows no 429
and exactly one add per company, so no row ran twice across the hosts.
"""

import os
from collections import Counter

import pytest

from operations import limiter
from operations.models import Operation, OperationState
from operations.services import operations_start
from products.models import CompanyProduct
from tests.operations.helpers import custom_product, make_fleet, wait_for_job
from tests.plugins.celery_worker import REPO, CeleryWorker
from tests.plugins.database import database_url_for_worker

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.worker,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

FLEET = 300
HOSTS = ("host-a", "host-b", "host-c")
# Codat's (the sandbox's) ceiling, and the fleet's budget under it: 240 less 10% headroom is 216
# calls a minute, so the 300 adds take about 85 seconds and cross the sandbox's minute window.
SANDBOX_PER_MINUTE = 240
HEADROOM = 0.1


@pytest.fixture
def three_hosts(operations_env, django_db_setup, celery_app_on_redis):
    workers = [
        CeleryWorker(
            app=celery_app_on_redis,
            env={**operations_env, "DATABASE_URL": database_url_for_worker()},
            concurrency=int(os.environ.get("OPERATIONS_TEST_CONCURRENCY", "2")),
            log_path=REPO / "var" / f"test-fleet-{host}.log",
            name=host,
        )
        for host in HOSTS
    ]
    try:
        for worker in workers:
            worker.start()
        yield workers
    finally:
        for worker in workers:
            worker.stop()


def tasks_run_by(app, hostname: str) -> int:
    stats = app.control.inspect(destination=[hostname], timeout=2).stats() or {}
    return sum((stats.get(hostname) or {}).get("total", {}).values())


def most_calls_in_any_minute(times: list[float]) -> int:
    times = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 60:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_three_workers_on_three_hosts_keep_one_fleet_limit_and_run_each_row_once(
    sandbox, operations_env, three_hosts, celery_app_on_redis
):
    # The setup's own calls go uncounted (no per-minute limit), so the minute starts empty.
    sandbox.control("PUT", "rate-limits", {"perMinute": None, "dailyQuota": 100_000})
    product = custom_product(sandbox)
    companies = make_fleet(sandbox, FLEET)
    sandbox.control("PUT", "rate-limits", {"perMinute": SANDBOX_PER_MINUTE})
    limiter.configure(per_minute=SANDBOX_PER_MINUTE, headroom=HEADROOM)
    calls_before = len(sandbox.request("GET", "/_sandbox/calls").json())

    job, plan = operations_start(
        kind="add_product", company_ids=[c.pk for c in companies], product=product
    )
    assert plan.counts["queued"] == FLEET, (plan.counts, plan.skipped_reasons())
    wait_for_job(job, timeout=240)

    rows = Operation.objects.filter(job=job)
    assert set(rows.values_list("state", flat=True)) == {OperationState.SUCCEEDED}
    assert CompanyProduct.objects.filter(product=product, status="active").count() == FLEET

    calls = sandbox.request("GET", "/_sandbox/calls").json()[calls_before:]
    assert [c for c in calls if c["status"] == 429] == []
    adds = [
        c
        for c in calls
        if c["method"] != "GET" and c["path"].endswith(f"/products/{product.identifier}")
    ]
    adds_per_company = Counter(c["companyId"] for c in adds)
    assert set(adds_per_company) == {str(c.codat_id) for c in companies}
    assert set(adds_per_company.values()) == {1}  # no add reached Codat twice
    assert set(rows.values_list("attempts", flat=True)) == {1}
    assert most_calls_in_any_minute([c["realTime"] for c in calls]) <= SANDBOX_PER_MINUTE

    # Every host took a share, so the limit held across hosts, not within one worker.
    for worker in three_hosts:
        assert tasks_run_by(celery_app_on_redis, worker.hostname) > 0, worker.hostname
