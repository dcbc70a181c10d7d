from datetime import UTC, datetime, timedelta

import pytest
from requests.structures import CaseInsensitiveDict

from codat import RateLimit, parse_retry_after

NOW = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds", "when"),
    [
        ("120", 120.0, NOW + timedelta(seconds=120)),
        (" 0 ", 0.0, NOW),
        ("Mon, 23 Nov 2026 00:00:00 GMT", 6 * 3600.0, datetime(2026, 11, 23, tzinfo=UTC)),
        # A date already past means "now", never a negative wait.
        ("Sun, 22 Nov 2026 17:00:00 GMT", 0.0, datetime(2026, 11, 22, 17, tzinfo=UTC)),
        (None, None, None),
        ("", None, None),
        ("soon", None, None),
        ("-5", None, None),
    ],
)
def test_parse_retry_after_reads_delta_seconds_and_http_dates(header, seconds, when):
    assert parse_retry_after(header, now=NOW) == (seconds, when)


def test_parse_retry_after_returns_an_aware_datetime():
    _, when = parse_retry_after("Mon, 23 Nov 2026 00:00:00 GMT", now=NOW)

    assert when.tzinfo is not None


@pytest.mark.parametrize(
    ("reset", "reset_at"),
    [
        ("1795392000", datetime.fromtimestamp(1795392000, UTC)),
        ("3600", NOW + timedelta(hours=1)),
        ("2026-11-23T00:00:00Z", datetime(2026, 11, 23, tzinfo=UTC)),
        ("2026-11-23T00:00:00", datetime(2026, 11, 23, tzinfo=UTC)),
        ("Mon, 23 Nov 2026 00:00:00 GMT", datetime(2026, 11, 23, tzinfo=UTC)),
        ("tomorrow", None),
    ],
)
def test_rate_limit_reads_the_reset_in_any_plausible_format(reset, reset_at):
    headers = {"x-rate-limit-limit": "3000", "x-rate-limit-remaining": "12"}
    headers["x-rate-limit-reset"] = reset

    rate_limit = RateLimit.from_headers(CaseInsensitiveDict(headers), now=NOW)

    assert rate_limit == RateLimit(3000, 12, reset, reset_at, NOW)


def test_rate_limit_is_none_without_any_rate_limit_header():
    assert RateLimit.from_headers({}, now=NOW) is None


def test_rate_limit_tolerates_garbage_counts():
    rate_limit = RateLimit.from_headers({"X-Rate-Limit-Remaining": "lots"}, now=NOW)

    assert (rate_limit.limit, rate_limit.remaining, rate_limit.reset_at) == (None, None, None)
