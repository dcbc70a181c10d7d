"""Requests per API key (or staff session) in a fixed window, counted in Redis.

DRF's own throttles keep a list of timestamps per client in the cache and rewrite it on every
request (a race between two requests loses a count); one INCR per request is atomic and cheap.
The figures of the window are kept on the request for the RateLimit headers of the response.
If Redis is down the limit is skipped, not the API (logged), as the consent pages do.
"""

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from api.models import ApiKey
from core.redis_connection import redis_client

logger = logging.getLogger(__name__)

UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_rate(value: str) -> tuple[int, int]:
    """'600/m' -> (600, 60)."""
    count, _, unit = value.partition("/")
    if unit not in UNITS or not count.isdigit() or int(count) < 1:
        raise ValueError(f"API_RATE_LIMIT must look like '600/m', not {value!r}")
    return int(count), UNITS[unit]


@dataclass(frozen=True)
class Window:
    limit: int
    remaining: int
    reset: int  # seconds until the window ends
    seconds: int

    def headers(self) -> dict[str, str]:
        # The IETF httpapi draft's fields (RateLimit-Policy / RateLimit), and the older
        # RateLimit-Limit/-Remaining/-Reset trio that many clients still read.
        return {
            "RateLimit-Policy": f'"default";q={self.limit};w={self.seconds}',
            "RateLimit": f'"default";r={self.remaining};t={self.reset}',
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }


def client_of(request) -> str:
    if isinstance(request.auth, ApiKey):
        return f"key:{request.auth.prefix}"
    if request.user.is_authenticated:
        return f"user:{request.user.pk}"
    return f"ip:{request.META.get('REMOTE_ADDR', '')}"


class ApiRateThrottle(BaseThrottle):
    def allow_request(self, request, view):
        limit, seconds = parse_rate(settings.API_RATE_LIMIT)
        now = time.time()
        bucket = int(now // seconds)
        reset = max(1, int((bucket + 1) * seconds - now))
        key = f"api:rate:{client_of(request)}:{bucket}"
        try:
            pipe = redis_client().pipeline()
            pipe.incr(key)
            pipe.expire(key, seconds + 1)
            hits = pipe.execute()[0]
        except Exception:
            logger.warning("api_rate_limit.redis_unavailable", exc_info=True)
            return True
        self.window = Window(
            limit=limit, remaining=max(0, limit - hits), reset=reset, seconds=seconds
        )
        request.rate_limit_window = self.window
        return hits <= limit

    def wait(self):
        return self.window.reset
