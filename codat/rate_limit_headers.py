"""Reading Codat's rate-limit headers: X-Rate-Limit-* on every response, Retry-After on a 429.

The fleet rate limiter reads `RateLimit` from `CodatClient.last_rate_limit` and from
`CodatRateLimited.rate_limit`.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# Numeric reset values at or above this are Unix timestamps; below it, seconds from now.
_UNIX_TIMESTAMP_FLOOR = 1_000_000_000


@dataclass(frozen=True)
class RateLimit:
    """Codat's daily quota as reported by one response.

    `reset_raw` is the header as sent. Codat's docs call X-Rate-Limit-Reset "the reset date"
    without giving its format, so `reset_at` accepts a Unix timestamp, a number of seconds, an
    ISO 8601 date-time or an HTTP-date, and is None when none of these fit.
    """

    limit: int | None
    remaining: int | None
    reset_raw: str | None
    reset_at: datetime | None
    observed_at: datetime

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], *, now: datetime | None = None):
        """Return the figures in `headers` (case-insensitive), or None if there are none."""
        limit = headers.get("X-Rate-Limit-Limit")
        remaining = headers.get("X-Rate-Limit-Remaining")
        reset = headers.get("X-Rate-Limit-Reset")
        if limit is None and remaining is None and reset is None:
            return None
        now = now or datetime.now(UTC)
        return cls(
            limit=_parse_int(limit),
            remaining=_parse_int(remaining),
            reset_raw=reset,
            reset_at=_parse_reset(reset, now),
            observed_at=now,
        )


def parse_retry_after(value: str | None, *, now: datetime | None = None):
    """Parse a Retry-After header (RFC 9110 §10.2.3) into `(seconds, aware datetime)`.

    The header is either delta-seconds ("120") or an HTTP-date ("Wed, 21 Oct 2026 07:28:00
    GMT"). A date in the past gives 0 seconds. Returns `(None, None)` if absent or unreadable.
    """
    if value is None or not value.strip():
        return None, None
    now = now or datetime.now(UTC)
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
        return seconds, now + timedelta(seconds=seconds)
    when = _parse_http_date(value)
    if when is None:
        return None, None
    return max(0.0, (when - now).total_seconds()), when


def _parse_int(value: str | None) -> int | None:
    try:
        return int(value.strip()) if value is not None else None
    except ValueError:
        return None


def _parse_reset(value: str | None, now: datetime) -> datetime | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if number >= _UNIX_TIMESTAMP_FLOOR:
            return datetime.fromtimestamp(number, UTC)
        return now + timedelta(seconds=max(number, 0))
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return _parse_http_date(value)
    # Codat's own timestamps without an offset are UTC.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_http_date(value: str) -> datetime | None:
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    # RFC 9110 dates are always GMT; parsedate_to_datetime leaves "-0000" naive.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
