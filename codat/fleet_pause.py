"""The fleet-wide pause of calls to Codat, shared by every worker through one Redis key.

Codat says "stop" in two ways: a 429 with `Retry-After`, and the `client.rateLimit.reached`
webhook whose `expiryDate` is when the daily quota comes back. Both write the same key, so the
shared rate limiter has a single place to look before any call:

    codat:paused_until = <epoch seconds, as a decimal string>, expiring at that moment

A pause only ever grows: a shorter pause never cuts a longer one short. Framework-free, like the
rest of `codat/`: callers pass their Redis client.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

PAUSE_KEY = "codat:paused_until"

# Only ever lengthen the pause, atomically: two workers may write it at the same moment.
_EXTEND_PAUSE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local wanted = tonumber(ARGV[1])
if wanted > current then
    redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
    return 1
end
return 0
"""


def pause_codat_calls_until(redis_client, moment: datetime) -> bool:
    """Pause every worker's Codat calls until `moment` (aware). False if already paused longer
    or if `moment` is in the past."""
    until = moment.timestamp()
    if until <= time.time():
        return False
    expire_at_ms = math.ceil(until * 1000)
    return bool(redis_client.eval(_EXTEND_PAUSE, 1, PAUSE_KEY, repr(until), expire_at_ms))


def codat_calls_paused_until(redis_client) -> datetime | None:
    """When the fleet-wide pause ends, or None when calls may go ahead."""
    raw = redis_client.get(PAUSE_KEY)
    if raw is None:
        return None
    until = float(raw)
    if until <= time.time():
        return None
    return datetime.fromtimestamp(until, tz=UTC)


def resume_codat_calls(redis_client) -> None:
    """Lift the pause at once (Codat said the quota was reset)."""
    redis_client.delete(PAUSE_KEY)
