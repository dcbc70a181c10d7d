"""A 429 with Retry-After pauses every worker at once, until then, through one Redis key."""

from datetime import datetime

import pytest

from operations import limiter
from operations.models import Operation, OperationState
from operations.services import operations_start
from tests.operations.helpers import custom_product, make_fleet, wait_for_job
from tests.waiting import wait_until

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.worker,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

PAUSE_SECONDS = 8


def test_no_call_reaches_codat_while_the_fleet_is_paused(
    sandbox, operations_env, operations_worker
):
    # given a fleet, and Codat's daily quota spent by someone else a few seconds before midnight
    product = custom_product(sandbox)
    companies = make_fleet(sandbox, 20)
    used = sandbox.control("GET", "rate-limits/usage").json()["used"]
    sandbox.control("PUT", "rate-limits", {"dailyQuota": used})
    now = datetime.fromisoformat(
        sandbox.control("GET", "clock").json()["now"].replace("Z", "+00:00")
    )
    to_midnight = 86400 - (now.timestamp() % 86400)
    sandbox.advance(to_midnight - PAUSE_SECONDS)
    # The sandbox's day now ends hours before the real UTC day the limiter counts by: give the
    # limiter's own daily budget room, so that only Codat's 429 can stop the fleet here.
    limiter.configure(per_day=1_000_000)
    # when the portal adds the product to the fleet
    job, _ = operations_start(
        kind="add_product", company_ids=[c.pk for c in companies], product=product
    )
    paused_until = wait_until(
        limiter.codat_calls_paused_until, timeout=20, interval=0.02, message="no pause was set"
    )
    wait_for_job(job, timeout=60)
    # then the first 429s came together, nothing came during the pause, and all finished after
    calls = sandbox.request("GET", "/_sandbox/calls").json()
    rate_limited = [c for c in calls if c["status"] == 429]
    assert 1 <= len(rate_limited) <= operations_worker.concurrency
    first_429 = min(c["realTime"] for c in rate_limited)
    assert paused_until.timestamp() - first_429 >= PAUSE_SECONDS - 2
    during_pause = [
        c
        for c in calls
        if first_429 + 0.5 < c["realTime"] < paused_until.timestamp() and c["status"] != 429
    ]
    assert during_pause == []
    after = [c for c in calls if c["realTime"] >= paused_until.timestamp()]
    assert len([c for c in after if c["status"] == 204]) == 20
    rows = Operation.objects.filter(job=job)
    assert set(rows.values_list("state", flat=True)) == {OperationState.SUCCEEDED}
    # A 429 is Codat asking to wait, not a failure: no row used up its retry budget.
    assert not rows.filter(transient_failures__gt=0).exists()
