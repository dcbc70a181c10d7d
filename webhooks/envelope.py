"""Reading Codat's event envelope: `{id, eventType, generatedDate, payload}`."""

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from companies.codat_times import InvalidCodatTime, parse_codat_datetime

# Codat's envelopes nest a handful of levels. A signed body nested deeper is refused before any
# parser walks it: CPython's json raises RecursionError near 1,000 levels (a 500 at the
# endpoint), and the ledger page's pretty printer gives up far sooner.
MAX_NESTING = 64
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")


def nests_deeper_than(body: str, limit: int = MAX_NESTING) -> bool:
    """Whether the JSON text opens more than `limit` arrays or objects inside one another.

    Counts brackets outside strings, without recursion. A body with no more opening brackets
    than the limit cannot nest deeper, which settles ordinary deliveries with two C-speed
    counts, off the endpoint's hot path.
    """
    if body.count("{") + body.count("[") <= limit:
        return False
    depth = 0
    for bracket in _BRACKET.findall(_JSON_STRING.sub("", body)):
        if bracket in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


class Unprocessable(Exception):
    """A signed body that cannot be applied; the event is quarantined with this reason."""


@dataclass(frozen=True)
class Envelope:
    event_id: str
    event_type: str
    generated_at: datetime
    payload: dict


def parse_uuid(value, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError) as error:
        raise Unprocessable(f"{field} is not a UUID: {value!r}") from error


def parse_envelope(body: str) -> Envelope:
    if nests_deeper_than(body):
        raise Unprocessable(f"body nests deeper than {MAX_NESTING} levels")
    try:
        document = json.loads(body)
    except ValueError as error:
        raise Unprocessable(f"body is not JSON: {error}") from error
    if not isinstance(document, dict):
        raise Unprocessable("body is not a JSON object")
    event_type = document.get("eventType")
    if not isinstance(event_type, str) or not event_type:
        raise Unprocessable("eventType is missing")
    payload = document.get("payload")
    if not isinstance(payload, dict):
        raise Unprocessable("payload is missing or not an object")
    try:
        generated_at = parse_codat_datetime(document.get("generatedDate"), field="generatedDate")
    except InvalidCodatTime as error:
        raise Unprocessable(str(error)) from error
    return Envelope(
        event_id=str(document.get("id") or "")[:64],
        event_type=event_type[:200],
        generated_at=generated_at,
        payload=payload,
    )


def company_codat_id(envelope: Envelope) -> uuid.UUID | None:
    """The company an event is about, where it names one."""
    payload = envelope.payload
    if envelope.event_type.startswith("company."):
        candidate = payload.get("id")
    else:
        reference = payload.get("referenceCompany")
        candidate = reference.get("id") if isinstance(reference, dict) else None
    try:
        return uuid.UUID(str(candidate)) if candidate else None
    except ValueError:
        return None
