"""Fleet adds through a real worker against the sandbox over HTTP, with faults on the way.

Each run adds a product to 200 companies with 5% of Codat's answers an injected 5xx, and ends
with every company holding the product at Codat and in the mirror, one assignment and one row
per company. The limiter and the sandbox are set to 3,000 calls a minute so a run takes seconds.
"""

import pytest
import redis

from operations import limiter
from operations.models import Operation, OperationState
from operations.services import operations_start
from products.models import CompanyProduct
from tests.operations.helpers import custom_product, make_fleet, sandbox_products, wait_for_job
from tests.waiting import wait_until

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.worker,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

FLEET = 200


@pytest.fixture
def fleet(sandbox, operations_env):
    sandbox.control("PUT", "rate-limits", {"perMinute": 3000})
    limiter.configure(per_minute=3000)
    product = custom_product(sandbox)
    companies = make_fleet(sandbox, FLEET)
    sandbox.control("PUT", "faults", {"errorRate": 0.05, "errorStatus": 503})
    return product, companies


def start_fleet_add(product, companies):
    job, plan = operations_start(
        kind="add_product", company_ids=[c.pk for c in companies], product=product
    )
    assert plan.counts["queued"] == FLEET, (plan.counts, plan.skipped_reasons())
    return job


def succeeded(job) -> int:
    return Operation.objects.filter(job=job, state=OperationState.SUCCEEDED).count()


def wait_for_progress(job, count: int, timeout: float = 60) -> None:
    wait_until(
        lambda: succeeded(job) >= count,
        timeout=timeout,
        message=lambda: f"only {succeeded(job)} done",
    )


def assert_every_company_holds_the_product(sandbox, job, product, companies):
    # The injected faults would hit this check's own reads too.
    sandbox.control("PUT", "faults", {"errorRate": 0})
    at_codat = sandbox_products(sandbox)
    missing = [c.pk for c in companies if product.identifier not in at_codat[str(c.codat_id)]]
    assert missing == []
    assert CompanyProduct.objects.filter(product=product).count() == FLEET
    assert set(CompanyProduct.objects.values_list("status", flat=True)) == {"active"}
    rows = Operation.objects.filter(job=job)
    assert rows.count() == FLEET
    assert rows.values("company").distinct().count() == FLEET
    assert set(rows.values_list("state", flat=True)) == {OperationState.SUCCEEDED}
    calls = sandbox.request("GET", "/_sandbox/calls").json()
    assert not [c for c in calls if c["status"] == 429]


def test_a_fleet_add_with_injected_server_errors_completes(sandbox, fleet, operations_worker):
    product, companies = fleet
    job = start_fleet_add(product, companies)
    wait_for_job(job, timeout=60)
    assert_every_company_holds_the_product(sandbox, job, product, companies)
    retried = Operation.objects.filter(job=job, transient_failures__gt=0).count()
    assert retried > 0  # the injected 503s happened and were retried


def test_a_fleet_add_survives_the_worker_being_killed_midway(sandbox, fleet, operations_worker):
    product, companies = fleet
    job = start_fleet_add(product, companies)
    wait_for_progress(job, FLEET // 2)
    operations_worker.kill()
    assert succeeded(job) < FLEET
    operations_worker.start()
    # Beat's sweeper frees the rows the dead worker held and re-sends what Redis still owes.
    wait_for_job(job, timeout=60, sweep_every=1.0)
    assert_every_company_holds_the_product(sandbox, job, product, companies)


def test_a_fleet_add_survives_redis_being_flushed_midway(
    sandbox, fleet, operations_worker, operations_redis_url
):
    product, companies = fleet
    job = start_fleet_add(product, companies)
    wait_for_progress(job, FLEET // 2)
    redis.Redis.from_url(operations_redis_url).flushdb()
    # The limiter's settings went with Redis: put the test's budget back, as an operator would.
    limiter.configure(per_minute=3000)
    assert succeeded(job) < FLEET
    wait_for_job(job, timeout=60, sweep_every=1.0)
    assert_every_company_holds_the_product(sandbox, job, product, companies)
