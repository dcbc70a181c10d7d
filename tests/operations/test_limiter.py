"""The fleet limiter in Redis: pacing, daily budget, per-company leases, the shared pause."""

import itertools
import time
from datetime import UTC, datetime, timedelta

import pytest

from codat import fleet_pause
from codat.rate_limit_headers import RateLimit
from operations import limiter


@pytest.fixture
def fresh_limiter(operations_redis_url, settings):
    settings.REDIS_URL = operations_redis_url
    client = limiter.redis_client()
    client.flushdb()
    yield client
    client.flushdb()


def test_grants_are_spaced_at_the_per_minute_rate(fresh_limiter):
    limiter.configure(per_minute=600, headroom=0.0)  # 10 a second, no burst
    delays = []
    for _ in range(5):
        permit = limiter.acquire(company_id=None)
        assert permit.granted
        delays.append(permit.delay)
    # Each caller books the next slot: 0, 0.1, 0.2 ... seconds from now.
    assert delays[0] == pytest.approx(0, abs=0.02)
    for earlier, later in itertools.pairwise(delays):
        assert later - earlier == pytest.approx(0.1, abs=0.02)


def test_a_caller_is_refused_rather_than_booked_too_far_ahead(fresh_limiter):
    limiter.configure(per_minute=60, headroom=0.0)  # one a second
    for _ in range(3):
        assert limiter.acquire(company_id=None, max_wait=2.5).granted
    refused = limiter.acquire(company_id=None, max_wait=2.5)
    assert not refused.granted
    assert refused.reason == "rate"
    assert 0 < refused.wait <= 1.0


def test_at_most_the_per_company_limit_run_at_once_and_leases_are_released(fresh_limiter):
    limiter.configure(per_minute=100000, per_company=3)
    permits = [limiter.acquire(company_id="c1") for _ in range(3)]
    assert all(p.granted for p in permits)
    busy = limiter.acquire(company_id="c1")
    assert (busy.granted, busy.reason) == (False, "company_busy")
    assert limiter.acquire(company_id="c2").granted  # another company is not affected
    limiter.release(permits[0])
    assert limiter.acquire(company_id="c1").granted


def test_a_lease_of_a_killed_worker_expires(fresh_limiter, settings):
    settings.CODAT_CONNECT_TIMEOUT = 0.1
    settings.CODAT_READ_TIMEOUT = 0.1
    limiter.configure(per_minute=100000, per_company=1)
    assert limiter.acquire(company_id="c1").granted  # never released: the worker died
    assert not limiter.acquire(company_id="c1").granted
    fresh_limiter.zadd(
        f"{limiter.COMPANY_KEY_PREFIX}c1",
        dict.fromkeys(fresh_limiter.zrange(f"{limiter.COMPANY_KEY_PREFIX}c1", 0, -1), 0),
    )  # as if LEASE_MARGIN_SECONDS had passed
    assert limiter.acquire(company_id="c1").granted


def test_the_daily_budget_stops_calls_until_midnight_utc(fresh_limiter):
    limiter.configure(per_minute=100000, per_day=2)
    assert limiter.acquire(company_id=None).granted
    assert limiter.acquire(company_id=None).granted
    refused = limiter.acquire(company_id=None)
    assert refused.reason == "quota"
    now = datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert refused.resume_at == pytest.approx(midnight, abs=timedelta(seconds=2))


def test_the_quota_codat_reports_is_the_daily_budget_and_its_count_wins(fresh_limiter):
    limiter.configure(per_minute=100000)
    now = datetime.now(UTC)
    limiter.observe(
        RateLimit(limit=10, remaining=1, reset_raw=None, reset_at=None, observed_at=now)
    )
    assert limiter.acquire(company_id=None).granted
    assert limiter.acquire(company_id=None).reason == "quota"


def test_codat_saying_nothing_remains_pauses_the_fleet_until_its_reset(fresh_limiter):
    reset = datetime.now(UTC) + timedelta(minutes=5)
    limiter.observe(
        RateLimit(limit=10, remaining=0, reset_raw="x", reset_at=reset, observed_at=reset)
    )
    assert limiter.codat_calls_paused_until() == pytest.approx(reset, abs=timedelta(seconds=1))
    assert limiter.acquire(company_id=None).reason == "paused"


def test_there_is_one_pause_shared_with_the_webhook_handler(fresh_limiter):
    """codat.fleet_pause (client.rateLimit.reached) and the limiter read and write one key."""
    until = datetime.now(UTC) + timedelta(seconds=30)
    fleet_pause.pause_codat_calls_until(fresh_limiter, until)
    refused = limiter.acquire(company_id=None)
    assert refused.reason == "paused"
    assert 28 < refused.wait <= 30.5  # Redis time vs this clock, rounded up to the ms
    # A shorter pause never cuts it short; resuming lifts it.
    limiter.pause_codat_calls_until(datetime.now(UTC) + timedelta(seconds=5))
    assert limiter.codat_calls_paused_until() == pytest.approx(until, abs=timedelta(seconds=1))
    limiter.resume_codat_calls()
    assert limiter.acquire(company_id=None).granted


def test_a_blocking_slot_waits_its_turn(fresh_limiter):
    limiter.configure(per_minute=600, headroom=0.0)
    started = time.monotonic()
    for _ in range(4):
        with limiter.slot(company_id="c1"):
            pass
    assert time.monotonic() - started >= 0.28
