"""The one reader of Codat's date-times, and the webhook envelope that uses it."""

import json

import pytest

from companies.codat_times import (
    InvalidCodatTime,
    parse_codat_datetime,
    parse_optional_codat_datetime,
)
from webhooks.envelope import Unprocessable, parse_envelope


def test_a_time_with_an_offset_keeps_it_and_one_without_is_utc():
    assert parse_codat_datetime("2026-11-20T23:04:11.231Z", field="lastSync").isoformat() == (
        "2026-11-20T23:04:11.231000+00:00"
    )
    assert parse_codat_datetime("2026-11-20T23:00:00+01:00", field="created").isoformat() == (
        "2026-11-20T23:00:00+01:00"
    )


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "expiryDate is missing"),
        ("", "expiryDate is missing"),
        ("yesterday", "expiryDate is not an ISO 8601 date-time: 'yesterday'"),
        # well formed, but no such day
        ("2026-02-30T10:00:00Z", "expiryDate is not an ISO 8601 date-time: '2026-02-30T10:00:00Z'"),
        (1764500000, "expiryDate is not an ISO 8601 date-time: 1764500000"),
    ],
)
def test_an_unreadable_time_is_refused_naming_its_field(value, reason):
    with pytest.raises(InvalidCodatTime) as refused:
        parse_codat_datetime(value, field="expiryDate")
    assert str(refused.value) == reason


def test_an_optional_time_may_be_absent_but_not_unreadable():
    assert parse_optional_codat_datetime(None, field="completed") is None
    assert parse_optional_codat_datetime("", field="completed") is None
    with pytest.raises(InvalidCodatTime, match="completed is not an ISO 8601"):
        parse_optional_codat_datetime("soon", field="completed")


def test_the_envelope_names_generated_date_when_it_cannot_be_read():
    body = {"id": "e", "eventType": "company.created", "payload": {}, "generatedDate": "Monday"}

    with pytest.raises(Unprocessable) as refused:
        parse_envelope(json.dumps(body))

    assert str(refused.value) == "generatedDate is not an ISO 8601 date-time: 'Monday'"
