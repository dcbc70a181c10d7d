"""The one rate limiter for every worker and process that calls Codat, kept in Redis.

Before each Codat call, `acquire()` runs one Lua script (atomic, one round trip) that checks, in
this order:

1. the shared pause (`codat.fleet_pause`: `codat:paused_until`, Unix seconds): set when Codat
   answers 429, when its X-Rate-Limit-Remaining reaches 0, or by the client.rateLimit.reached
   webhook;
2. the daily budget, counted per UTC day (Codat resets its quota at 00:00 UTC);
3. the company's concurrent calls: a ZSET of leases scored by their expiry, so a worker killed
   with SIGKILL cannot keep a slot longer than one lease;
4. the per-minute budget as GCRA: each grant reserves the next slot of a steady rate, and the
   caller sleeps until its slot (at most `max_wait`), so the fleet's calls are evenly spaced.

Only if every check passes does the script count the call and take the lease. Budgets come from
settings (CODAT_RATE_LIMIT_*), overridden at run time by the Redis hash `codat:limiter:config`
(`configure()`), and the daily quota Codat reports in X-Rate-Limit-Limit wins over the formula.

Celery's per-task `rate_limit` is per worker process, so it cannot be this.
"""

from __future__ import annotations

import contextlib
import enum
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings

from codat import fleet_pause
from codat.errors import CodatRateLimited
from codat.fleet_pause import PAUSE_KEY
from codat.rate_limit_headers import RateLimit
from core.redis_connection import redis_client

CONFIG_KEY = "codat:limiter:config"
GCRA_KEY = "codat:limiter:tat"
QUOTA_LIMIT_KEY = "codat:quota:limit"
# Set beside QUOTA_LIMIT_KEY when the limit is the one Codat reported (X-Rate-Limit-Limit), not
# the sweeper's estimate from Codat's formula: the dashboard says which it shows.
QUOTA_LIMIT_REPORTED_KEY = "codat:quota:limit:reported"
DAY_KEY_PREFIX = "codat:limiter:day:"
COMPANY_KEY_PREFIX = "codat:limiter:company:"

# Calls allowed at once on top of the steady rate after a quiet spell. 0: strictly evenly spaced,
# so no second ever sees more than the per-minute budget / 60 (+1).
DEFAULT_BURST = 0
# How far ahead a caller may book its slot; a caller told to wait longer gives its work back.
DEFAULT_MAX_WAIT_SECONDS = 5.0
# A lease outlives the longest call (connect + read timeout) by a margin.
LEASE_MARGIN_SECONDS = 10.0

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function setting(name, default)
  local value = redis.call('HGET', KEYS[6], name)
  if value then return tonumber(value) end
  return tonumber(default)
end

local paused = tonumber(redis.call('GET', KEYS[1]) or '0') * 1000
if paused > now then return {'paused', math.ceil(paused - now), 0} end

local per_day = setting('per_day', ARGV[1])
if per_day <= 0 then per_day = tonumber(redis.call('GET', KEYS[5]) or '0') end
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if per_day > 0 and used >= per_day then
  local midnight = (math.floor(now / 86400000) + 1) * 86400000
  return {'quota', midnight - now, 0}
end

local per_company = setting('per_company', ARGV[2])
if KEYS[3] ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  if redis.call('ZCARD', KEYS[3]) >= per_company then
    return {'company_busy', 50, 0}
  end
end

local per_minute = setting('per_minute', ARGV[3])
local headroom = setting('headroom', ARGV[4])
local interval = 60000.0 / (per_minute * (1 - headroom))
local burst = setting('burst', ARGV[8])
local tolerance = interval * burst
local max_wait = tonumber(ARGV[5])
local tat = tonumber(redis.call('GET', KEYS[4]) or '0')
if tat < now then tat = now end
local slot = tat - tolerance
if slot < now then slot = now end
local delay = slot - now
if delay > max_wait then return {'rate', delay - max_wait, 0} end
local new_tat = tat + interval
redis.call('SET', KEYS[4], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 60000)

redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], 2 * 86400000)
if KEYS[3] ~= '' then
  local lease = tonumber(ARGV[6])
  redis.call('ZADD', KEYS[3], now + delay + lease, ARGV[7])
  redis.call('PEXPIRE', KEYS[3], math.ceil(delay + lease))
end
return {'ok', 0, math.floor(delay)}
"""

# Codat's own count wins when it is ahead of ours (other callers share the API key).
_OBSERVE = """
if ARGV[1] ~= '' then
  redis.call('SET', KEYS[2], ARGV[1], 'EX', 86400)
  redis.call('SET', KEYS[3], '1', 'EX', 86400)
end
if ARGV[2] ~= '' then
  local used = tonumber(redis.call('GET', KEYS[1]) or '0')
  if tonumber(ARGV[2]) > used then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', 2 * 86400000)
  end
end
return 1
"""


def _day_key(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{DAY_KEY_PREFIX}{now:%Y%m%d}"


# -- the shared pause (codat/fleet_pause.py; the webhook handler uses it too) ---------------------


def pause_codat_calls_until(moment: datetime) -> bool:
    """Stop every worker calling Codat until `moment` (aware). Never shortens a longer pause."""
    return fleet_pause.pause_codat_calls_until(redis_client(), moment)


def codat_calls_paused_until() -> datetime | None:
    """The end of the current pause, or None when calls may go ahead."""
    return fleet_pause.codat_calls_paused_until(redis_client())


def resume_codat_calls() -> None:
    """End the pause at once (client.rateLimit.reset: Codat says the quota is back)."""
    fleet_pause.resume_codat_calls(redis_client())


# -- run-time configuration -------------------------------------------------------------------


def configure(
    *,
    per_minute: int | None = None,
    per_day: int | None = None,
    per_company: int | None = None,
    headroom: float | None = None,
    burst: int | None = None,
) -> None:
    """Override the settings' budgets for the whole fleet, at once and without a restart."""
    values = {
        name: value
        for name, value in (
            ("per_minute", per_minute),
            ("per_day", per_day),
            ("per_company", per_company),
            ("headroom", headroom),
            ("burst", burst),
        )
        if value is not None
    }
    if values:
        redis_client().hset(CONFIG_KEY, mapping=values)


def clear_configuration() -> None:
    redis_client().delete(CONFIG_KEY)


def calls_per_minute() -> float:
    """The fleet's sustained call rate now: the per-minute budget (run-time override, else the
    settings') less the headroom kept for Codat's other callers."""
    try:
        configured = redis_client().hmget(CONFIG_KEY, "per_minute", "headroom")
    except Exception:
        configured = (None, None)
    per_minute = float(configured[0] or settings.CODAT_RATE_LIMIT_PER_MINUTE)
    headroom = float(configured[1] or settings.CODAT_RATE_LIMIT_HEADROOM)
    return max(1.0, per_minute * (1 - headroom))


def set_daily_quota_estimate(quota: int) -> None:
    """Codat's formula from the mirror, used until a response reports the real quota."""
    redis_client().set(QUOTA_LIMIT_KEY, quota, ex=86400, nx=True)


class QuotaSource(enum.StrEnum):
    """Where today's daily limit comes from, from the surest to the least sure."""

    CONFIGURED = "configured"  # CODAT_RATE_LIMIT_PER_DAY or a run-time override
    REPORTED = "reported"  # Codat's X-Rate-Limit-Limit on a response today
    ESTIMATED = "estimated"  # Codat's formula over the mirror (the sweeper's estimate)
    UNKNOWN = "unknown"  # nothing yet: no call answered and no sweep ran


@dataclass(frozen=True)
class DailyQuota:
    """Today's (UTC) Codat calls counted by the limiter, and the limit it holds them to."""

    used: int
    limit: int | None
    source: QuotaSource


def daily_quota(now: datetime | None = None) -> DailyQuota:
    """What `acquire()` compares: the day's counter against the configured budget, else the
    limit Codat reported, else the estimate. One round trip."""
    configured_per_day, used, limit, reported = (
        redis_client()
        .pipeline(transaction=False)
        .hget(CONFIG_KEY, "per_day")
        .get(_day_key(now))
        .get(QUOTA_LIMIT_KEY)
        .exists(QUOTA_LIMIT_REPORTED_KEY)
        .execute()
    )
    per_day = int(float(configured_per_day or settings.CODAT_RATE_LIMIT_PER_DAY))
    used = int(used or 0)
    if per_day > 0:
        return DailyQuota(used=used, limit=per_day, source=QuotaSource.CONFIGURED)
    if limit is None:
        return DailyQuota(used=used, limit=None, source=QuotaSource.UNKNOWN)
    source = QuotaSource.REPORTED if reported else QuotaSource.ESTIMATED
    return DailyQuota(used=used, limit=int(limit), source=source)


# -- acquiring and releasing ------------------------------------------------------------------


class PermitReason(enum.StrEnum):
    """Why the limiter answered as it did (the Lua script returns these words)."""

    OK = "ok"
    PAUSED = "paused"  # Codat said 429, or the daily quota is spent: the whole fleet waits
    QUOTA = "quota"  # the day's budget is used up
    COMPANY_BUSY = "company_busy"  # Codat's 10 concurrent calls per company are in flight
    RATE = "rate"  # the per-minute pace has no slot within the caller's wait


@dataclass(frozen=True)
class Permit:
    """The limiter's answer. Granted: call after `delay` seconds, then `release()`.

    Refused: `reason` says why, and `wait` how long until asking again is worthwhile.
    """

    granted: bool
    reason: PermitReason
    wait: float
    delay: float
    company_key: str
    token: str

    @property
    def resume_at(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.wait)


class LimiterBusy(Exception):
    """The fleet budget does not allow a call within the time the caller was prepared to wait."""

    def __init__(self, permit: Permit):
        super().__init__(f"Codat budget exhausted ({permit.reason}); retry in {permit.wait:.1f} s")
        self.permit = permit


def acquire(
    *, company_id: str | None, max_wait: float = DEFAULT_MAX_WAIT_SECONDS, now=None
) -> Permit:
    """Ask for one Codat call for `company_id` (Codat's id; None for client-level calls)."""
    company_key = f"{COMPANY_KEY_PREFIX}{company_id}" if company_id else ""
    token = uuid.uuid4().hex
    lease_ms = (settings.CODAT_CONNECT_TIMEOUT + settings.CODAT_READ_TIMEOUT) * 1000
    reason, wait_ms, delay_ms = redis_client().eval(
        _ACQUIRE,
        6,
        PAUSE_KEY,
        _day_key(now),
        company_key,
        GCRA_KEY,
        QUOTA_LIMIT_KEY,
        CONFIG_KEY,
        settings.CODAT_RATE_LIMIT_PER_DAY,
        settings.CODAT_RATE_LIMIT_PER_COMPANY,
        settings.CODAT_RATE_LIMIT_PER_MINUTE,
        settings.CODAT_RATE_LIMIT_HEADROOM,
        int(max_wait * 1000),
        int(lease_ms + LEASE_MARGIN_SECONDS * 1000),
        token,
        DEFAULT_BURST,
    )
    reason = PermitReason(reason.decode() if isinstance(reason, bytes) else reason)
    return Permit(
        granted=reason == PermitReason.OK,
        reason=reason,
        wait=int(wait_ms) / 1000,
        delay=int(delay_ms) / 1000,
        company_key=company_key,
        token=token,
    )


def release(permit: Permit) -> None:
    if permit.granted and permit.company_key:
        redis_client().zrem(permit.company_key, permit.token)


@contextlib.contextmanager
def slot(*, company_id: str | None, max_block: float = 30.0):
    """Block (up to `max_block` seconds) until a call is allowed, then hold it for the `with`.

    For reads done inline (import, reconcile). Raises LimiterBusy when the wait would be longer.
    """
    deadline = time.monotonic() + max_block
    while True:
        permit = acquire(company_id=company_id)
        if permit.granted:
            break
        if time.monotonic() + permit.wait > deadline:
            raise LimiterBusy(permit)
        time.sleep(permit.wait)
    try:
        if permit.delay:
            time.sleep(permit.delay)
        if codat_calls_paused_until() is not None:
            raise LimiterBusy(
                Permit(
                    False,
                    PermitReason.PAUSED,
                    _pause_seconds(),
                    0.0,
                    permit.company_key,
                    permit.token,
                )
            )
        yield permit
    finally:
        release(permit)


def _pause_seconds() -> float:
    until = codat_calls_paused_until()
    return max(0.0, (until - datetime.now(UTC)).total_seconds()) if until else 0.0


# -- learning from Codat's answers ------------------------------------------------------------


def observe(rate_limit: RateLimit | None, *, pause_when_spent: bool = True) -> None:
    """Take in X-Rate-Limit-Limit/Remaining/Reset from a response (success or error).

    Codat's count is authoritative: when it says nothing remains, the fleet pauses until its
    reset date, before any call has to be refused with a 429.
    """
    if rate_limit is None:
        return
    used = None
    if rate_limit.limit is not None and rate_limit.remaining is not None:
        used = max(0, rate_limit.limit - rate_limit.remaining)
    redis_client().eval(
        _OBSERVE,
        3,
        _day_key(),
        QUOTA_LIMIT_KEY,
        QUOTA_LIMIT_REPORTED_KEY,
        "" if rate_limit.limit is None else rate_limit.limit,
        "" if used is None else used,
    )
    spent = rate_limit.remaining is not None and rate_limit.remaining <= 0
    if pause_when_spent and spent and rate_limit.reset_at:
        pause_codat_calls_until(rate_limit.reset_at)


def pause_for(error: CodatRateLimited) -> datetime:
    """Turn a 429 into the fleet-wide pause; returns when calls may start again."""
    now = datetime.now(UTC)
    if error.retry_at is not None:
        until = error.retry_at
    elif error.rate_limit is not None and error.rate_limit.reset_at is not None:
        until = error.rate_limit.reset_at
    else:
        # No Retry-After and no reset date: Codat's per-minute window is the likely cause.
        until = now + timedelta(seconds=60)
    until = max(until, now + timedelta(seconds=1))
    pause_codat_calls_until(until)
    # Retry-After is the more precise answer to this very call; the reset date only fills in.
    observe(error.rate_limit, pause_when_spent=error.retry_at is None)
    return max(until, codat_calls_paused_until() or until)
