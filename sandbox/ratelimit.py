"""Codat's rate limits: a daily quota (reset 00:00 UTC sandbox time), a per-minute ceiling and at
most N concurrent calls per company. Every API response carries the X-Rate-Limit-* headers.
"""

import math
import time
from collections import Counter, deque
from typing import TYPE_CHECKING

from sandbox.clock import iso, next_utc_midnight
from sandbox.errors import ApiError

if TYPE_CHECKING:
    from sandbox.runtime import Sandbox

TOO_MANY = "You have made too many requests in a given amount of time; please retry later."


class RateLimiter:
    def __init__(self, sandbox: "Sandbox"):
        self.sb = sandbox
        self.used = 0
        self.reached = False
        self._minute: deque[float] = deque()
        self.inflight: Counter[str] = Counter()
        self._acc_cache = (0.0, 0)

    def reset(self) -> None:
        self.used = 0
        self.reached = False
        self._minute.clear()
        self.inflight.clear()
        self._acc_cache = (0.0, 0)

    def _active_connected_companies(self) -> int:
        checked_at, count = self._acc_cache
        if time.monotonic() - checked_at > 1.0:
            companies = {
                c["_companyId"] for c in self.sb.store.all("connection") if c["status"] == "Linked"
            }
            count = len(companies)
            self._acc_cache = (time.monotonic(), count)
        return count

    def quota(self) -> int:
        configured = self.sb.settings["rateLimits"].get("dailyQuota")
        if configured is not None:
            return int(configured)
        return 1000 * (1 + self._active_connected_companies())

    def headers(self) -> list[tuple[bytes, bytes]]:
        quota = self.quota()
        reset_at = iso(next_utc_midnight(self.sb.clock.now()))
        return [
            (b"x-rate-limit-limit", str(quota).encode()),
            (b"x-rate-limit-remaining", str(max(0, quota - self.used)).encode()),
            (b"x-rate-limit-reset", reset_at.encode()),
        ]

    def _too_many(self, retry_after_real_seconds: float) -> ApiError:
        seconds = max(1, math.ceil(retry_after_real_seconds))
        return ApiError(429, TOO_MANY, headers={"Retry-After": str(seconds)})

    def admit(self, company_id: str | None) -> None:
        """Count one call, or raise 429 with Retry-After (real seconds) when over a limit."""
        limits = self.sb.settings["rateLimits"]
        now = time.monotonic()
        per_minute = limits.get("perMinute")
        if per_minute is not None:
            while self._minute and now - self._minute[0] >= 60:
                self._minute.popleft()
            if len(self._minute) >= int(per_minute):
                raise self._too_many(60 - (now - self._minute[0]))
        quota = self.quota()
        if self.used >= quota:
            midnight = next_utc_midnight(self.sb.clock.now())
            raise self._too_many(self.sb.clock.real_seconds_until(midnight))
        concurrent = limits.get("concurrentPerCompany")
        if company_id and concurrent is not None and self.inflight[company_id] >= int(concurrent):
            raise self._too_many(1)
        self.used += 1
        if per_minute is not None:
            self._minute.append(now)
        if self.used >= quota and not self.reached:
            self.reached = True
            self._emit("client.rateLimit.reached", quota)

    def _emit(self, event_type: str, quota: int) -> None:
        at = self.sb.clock.now()
        payload = {
            "dailyQuota": quota,
            "quotaRemaining": max(0, quota - self.used),
            "expiryDate": iso(next_utc_midnight(at)),
        }
        self.sb.dispatcher.emit(event_type, payload, at=at)

    def reset_quota(self, due: float) -> None:
        """00:00 UTC: the daily quota starts again."""
        self.used = 0
        if self.reached:
            self.reached = False
            self._emit("client.rateLimit.reset", self.quota())
        self.sb.engine.schedule(next_utc_midnight(due), "quota_reset", "")
