"""The one reader of Codat's date-times, for API answers and webhook events alike."""

from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime


class InvalidCodatTime(ValueError):
    """A Codat date-time that cannot be read; the message names the field it came from."""


def parse_codat_datetime(value: object, *, field: str) -> datetime:
    """Codat sends ISO 8601, sometimes without an offset; those times are UTC."""
    if value is None or value == "":
        raise InvalidCodatTime(f"{field} is missing")
    parsed = None
    if isinstance(value, str):
        try:
            parsed = parse_datetime(value)
        except ValueError:
            # Well formed but impossible, such as 2026-02-30.
            parsed = None
    if parsed is None:
        raise InvalidCodatTime(f"{field} is not an ISO 8601 date-time: {value!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_optional_codat_datetime(value: object, *, field: str) -> datetime | None:
    """As `parse_codat_datetime`, but an absent value (null, empty) is None."""
    if value is None or value == "":
        return None
    return parse_codat_datetime(value, field=field)
