"""Per-IP fixed-window rate limit for the public consent links, counted in Django's cache (Redis).

The tokens are far too long to guess; the limit keeps anyone from trying at scale and keeps
the pages cheap to serve. If the cache is down the limit is skipped, not the page: a consent
page that fails closed would also lock out the SMB owners it is for.
"""

import logging
import time

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_rate(value: str) -> tuple[int, int]:
    """ "20/m" -> (20, 60)."""
    count, _, unit = value.partition("/")
    if unit not in UNITS or not count.isdigit() or int(count) < 1:
        raise ValueError(f"CONSENT_RATE_LIMIT must look like '20/m', not {value!r}")
    return int(count), UNITS[unit]


def client_ip(request) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is whatever the client says. Behind reverse proxies,
    # TRUSTED_PROXY_HOPS makes REMOTE_ADDR the client's (portal/proxies.py).
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def rate_limit_exceeded(request, *, scope: str) -> bool:
    limit, window = parse_rate(settings.CONSENT_RATE_LIMIT)
    bucket = int(time.time() // window)
    key = f"consent:rate:{scope}:{client_ip(request)}:{bucket}"
    try:
        cache.add(key, 0, timeout=window + 1)
        hits = cache.incr(key)
    except Exception:
        logger.warning("consent.rate_limit.unavailable", exc_info=True)
        return False
    if hits > limit:
        logger.warning("consent.rate_limit.exceeded", extra={"scope": scope, "hits": hits})
        return True
    return False
