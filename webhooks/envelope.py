"""Reading Codat's event envelope: `{id, eventType, generatedDate, payload}`."""

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from companies.codat_times import InvalidCodatTime, parse_codat_datetime


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
