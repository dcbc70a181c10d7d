"""One handler per Codat event type. Each applies an event to the mirror, idempotently.

Every handler runs inside the processing transaction and returns APPLIED or SUPERSEDED. Events
arrive in no guaranteed order, so an event's `generatedDate` is when its facts were observed; the
mirror's services (companies.services) apply a fact only if the row has seen no newer one, and
the rows the webhooks app keeps itself (write outcomes, bank-feed source accounts) follow the same
rule (companies.observations).

A handler raises `Unprocessable` (or lets KeyError, TypeError, ValueError escape) when the body
cannot be applied; the event is then quarantined. Anything else (database, Redis) is transient.
"""

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta

from django.db import connection

from companies import services as mirror
from companies.codat_times import (
    InvalidCodatTime,
    parse_codat_datetime,
    parse_optional_codat_datetime,
)
from companies.models import Company, ConnectionStatus, DatasetStatus
from companies.observations import is_older, locked_or_created
from core.redis_connection import redis_client
from webhooks.envelope import Envelope, Unprocessable, parse_uuid
from webhooks.models import BankFeedSourceAccount, EventState, WebhookEvent, WriteOutcome

log = logging.getLogger(__name__)

APPLIED = EventState.APPLIED
SUPERSEDED = EventState.SUPERSEDED

Handler = Callable[[Envelope], str]


def _outcome(applied: bool) -> str:
    return APPLIED if applied else SUPERSEDED


def _text(value, limit: int) -> str:
    return str(value)[:limit] if value is not None else ""


def _company_from_reference(reference) -> Company:
    """The mirrored company an event refers to, created from the reference if it is new."""
    if not isinstance(reference, dict):
        raise Unprocessable("referenceCompany is missing")
    codat_id = parse_uuid(reference.get("id"), "referenceCompany.id")
    return mirror.company_mirror_from_reference(codat_id=codat_id, reference=reference)


# --- company.* ---------------------------------------------------------------------------------


def company_created(event: Envelope) -> str:
    payload = event.payload
    codat_id = parse_uuid(payload.get("id"), "payload.id")
    applied = mirror.company_mirror_from_event(
        data={**payload, "id": str(codat_id)}, observed_at=event.generated_at
    )
    return _outcome(applied)


def company_deleted(event: Envelope) -> str:
    codat_id = parse_uuid(event.payload.get("id"), "payload.id")
    applied = mirror.company_deletion_mirror_from_event(
        codat_id=codat_id, data=event.payload, observed_at=event.generated_at
    )
    return _outcome(applied)


def company_products_changed(event: Envelope) -> str:
    """company.product.added and .removed: `products` is the full list after the change."""
    payload = event.payload
    products = payload.get("products")
    if not isinstance(products, list) or not all(isinstance(p, str) for p in products):
        raise Unprocessable("payload.products is not a list of product identifiers")
    codat_id = parse_uuid(payload.get("id"), "payload.id")
    applied = mirror.company_products_mirror_from_event(
        codat_id=codat_id,
        data=payload,
        product_identifiers=products,
        observed_at=event.generated_at,
    )
    return _outcome(applied)


# --- connection.* ------------------------------------------------------------------------------


def _connection_changed(event: Envelope, *, deleted: bool = False) -> str:
    company = _company_from_reference(event.payload.get("referenceCompany"))
    data = event.payload.get("connection")
    if not isinstance(data, dict):
        raise Unprocessable("payload.connection is missing")
    if data.get("status") not in ConnectionStatus.values:
        raise Unprocessable(f"unknown connection status {data.get('status')!r}")
    codat_id = parse_uuid(data.get("id"), "payload.connection.id")
    applied = mirror.connection_mirror_from_event(
        company=company,
        data={**data, "id": str(codat_id)},
        observed_at=event.generated_at,
        deleted=deleted,
    )
    return _outcome(applied)


def connection_changed(event: Envelope) -> str:
    """connection.created, .connected, .failed, .disconnected, .reconnected: the full
    connection as it is after the transition (a failed link stays PendingAuth with an error)."""
    return _connection_changed(event)


def connection_deleted(event: Envelope) -> str:
    return _connection_changed(event, deleted=True)


# --- reads ---------------------------------------------------------------------------------------

READ_COMPLETED = re.compile(
    r"^(?:(?P<product>[^.]+)\.)?read\.completed(?P<outcome>\.successful|\.unsuccessful)?"
    r"(?P<initial>\.initial)?$"
)


def read_completed(event: Envelope) -> str:
    """read.completed[.initial], its .successful/.unsuccessful sub-events, and the same for a
    custom product (`{productIdentifier}.read.completed...`): one entry per data type read.
    Superseded only when every entry is older than what its data type has seen.

    A Complete entry is also a sync of its connection (and so of the company): their last sync
    moves forward to the event's time, whatever the event's age, as Codat's lastSync does."""
    from products.models import DataType

    company = _company_from_reference(event.payload.get("referenceCompany"))
    entries = event.payload.get("dataTypes")
    if not isinstance(entries, list):
        raise Unprocessable("payload.dataTypes is not a list")
    known_types = set(DataType.objects.values_list("identifier", flat=True))
    valid_statuses = set(DatasetStatus.values)
    synced = False
    synced_connections = set()
    for entry in entries:
        if not isinstance(entry, dict):
            raise Unprocessable("payload.dataTypes holds a non-object")
        data_type = entry.get("dataType")
        if data_type not in known_types:
            raise Unprocessable(f"unknown data type {data_type!r}")
        status = entry.get("status") or ""
        if status and status not in valid_statuses:
            raise Unprocessable(f"unknown dataset status {status!r} for {data_type}")
        if status == DatasetStatus.COMPLETE:
            synced = True
            if entry.get("connectionId"):
                connection_id = parse_uuid(entry["connectionId"], "dataTypes[].connectionId")
                synced_connections.add(connection_id)
    applied = [
        mirror.data_type_status_mirror_from_read_event(
            company=company,
            data_type=entry["dataType"],
            status=entry.get("status") or "",
            issues=entry.get("issues") or [],
            records_modified=bool(entry.get("recordsModified")),
            observed_at=event.generated_at,
        )
        for entry in entries
    ]
    if product := READ_COMPLETED.match(event.event_type)["product"]:
        # The product's own view of the read: its freshness is kept apart from other products'.
        applied += [
            mirror.product_read_mirror_from_event(
                company=company,
                product_identifier=product,
                data_type=entry["dataType"],
                status=entry.get("status") or "",
                issues=entry.get("issues") or [],
                observed_at=event.generated_at,
            )
            for entry in entries
        ]
    if synced:
        mirror.last_sync_mirror_from_read_event(
            company=company, connection_codat_ids=synced_connections, synced_at=event.generated_at
        )
    return _outcome(any(applied) or not applied)


# --- writes --------------------------------------------------------------------------------------

DATA_TYPE_WRITE = re.compile(r"^(?P<data_type>[^.]+)\.write\.(?P<outcome>successful|unsuccessful)$")


def data_type_write(event: Envelope) -> str:
    """`{dataType}.write.successful` / `.unsuccessful`; `payload.id` is the pushOperationKey."""
    payload = event.payload
    company = _company_from_reference(payload.get("referenceCompany"))
    key = parse_uuid(payload.get("id"), "payload.id")
    data_type = DATA_TYPE_WRITE.match(event.event_type)["data_type"]
    status = payload.get("status")
    if not isinstance(status, str) or not status:
        raise Unprocessable("payload.status is missing")
    record = payload.get("record") if isinstance(payload.get("record"), dict) else {}
    connection_id = payload.get("connectionId")
    values = {
        "company": company,
        "connection_codat_id": parse_uuid(connection_id, "connectionId") if connection_id else None,
        "data_type": data_type[:64],
        "operation_type": _text(payload.get("type"), 32),
        "status": status[:16],
        "requested_at": parse_optional_codat_datetime(
            payload.get("requestedOnDate"), field="requestedOnDate"
        ),
        "completed_at": parse_optional_codat_datetime(
            payload.get("completedOnDate"), field="completedOnDate"
        ),
        "record_id": _text(record.get("id"), 255),
        "attachment_id": _text(payload.get("attachmentId"), 255),
        "last_event_at": event.generated_at,
    }
    if data_type == "bankTransactions":
        _bank_feed_push_outcome(key, status)
    outcome, created = locked_or_created(
        WriteOutcome,
        {"push_operation_key": key},
        lambda: WriteOutcome.objects.create(push_operation_key=key, **values),
    )
    if created:
        return APPLIED
    if is_older(event.generated_at, outcome.last_event_at):
        return SUPERSEDED
    WriteOutcome.objects.filter(pk=outcome.pk).update(**values)
    return APPLIED


def _bank_feed_push_outcome(key, status: str) -> None:
    """A bank-transactions push of the portal's moves to its outcome (bankfeeds/); a repeated or
    late event changes nothing there."""
    from bankfeeds.services import push_outcome_lock, push_outcome_observed

    # Held until the event's transaction commits, with the WriteOutcome the push's own answer
    # looks for if this event came first (bankfeeds.calls.push_answered).
    push_outcome_lock(key)
    if status in ("Success", "Failed", "TimedOut"):
        push_outcome_observed(push_operation_key=key, status=status)


# --- client rate limit -------------------------------------------------------------------------


# Drains run side by side, so a "reached" and a "reset" can be applied at the same moment, each
# checking the ledger for the other before either has committed: the older one's pause could
# then land in Redis after the newer reset lifted it, and calls would stay paused until the
# expiry. One PostgreSQL advisory lock, held until the event's transaction commits, puts them
# in turn; the second then sees the first in the ledger. (Any fixed 64-bit number will do;
# this one spells "codatRL".)
_RATE_LIMIT_EVENTS_LOCK = 0x636F6461_74524C


def _one_rate_limit_event_at_a_time() -> None:
    # Not on SQLite, the development fallback: it has no such lock.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_RATE_LIMIT_EVENTS_LOCK])


def _newer_applied(event: Envelope, event_type: str) -> bool:
    return WebhookEvent.objects.filter(
        event_type=event_type,
        state=EventState.APPLIED,
        generated_at__gt=event.generated_at,
    ).exists()


def _next_midnight_utc(after: datetime) -> datetime:
    return datetime.combine(after.astimezone(UTC).date() + timedelta(days=1), time(), tzinfo=UTC)


def client_rate_limit_reached(event: Envelope) -> str:
    """Pause every worker's Codat calls until the daily quota comes back (`expiryDate`)."""
    from codat.fleet_pause import pause_codat_calls_until

    _one_rate_limit_event_at_a_time()
    if _newer_applied(event, "client.rateLimit.reset"):
        return SUPERSEDED
    try:
        until = parse_codat_datetime(event.payload.get("expiryDate"), field="expiryDate")
    except InvalidCodatTime:
        # Codat's quota resets at 00:00 UTC; without a readable expiry, pause until then.
        until = _next_midnight_utc(event.generated_at)
        log.warning("webhooks.rate_limit.unreadable_expiry", extra={"payload": event.payload})
    pause_codat_calls_until(redis_client(), until)
    return APPLIED


def client_rate_limit_reset(event: Envelope) -> str:
    from codat.fleet_pause import resume_codat_calls

    _one_rate_limit_event_at_a_time()
    if _newer_applied(event, "client.rateLimit.reached"):
        return SUPERSEDED
    resume_codat_calls(redis_client())
    return APPLIED


# --- bank feeds ----------------------------------------------------------------------------------


def _source_account_changed(event: Envelope, *, connected: bool) -> str:
    payload = event.payload
    company = _company_from_reference(payload.get("referenceCompany"))
    connection_id = parse_uuid(payload.get("connectionId"), "connectionId")
    account = payload.get("sourceAccount")
    if not isinstance(account, dict) or not account.get("id"):
        raise Unprocessable("payload.sourceAccount.id is missing")
    lookup = {"connection_codat_id": connection_id, "account_id": _text(account["id"], 255)}
    values = {
        "company": company,
        "account_name": _text(account.get("accountName"), 255),
        "currency": _text(account.get("currency"), 3),
        "feed_connected": connected,
        "reported_status": _text(account.get("status"), 16),
        "last_event_at": event.generated_at,
    }
    _bank_feed_mapping(connection_id, account, event)
    row, created = locked_or_created(
        BankFeedSourceAccount,
        lookup,
        lambda: BankFeedSourceAccount.objects.create(**lookup, **values),
    )
    if created:
        return APPLIED
    if is_older(event.generated_at, row.last_event_at):
        return SUPERSEDED
    BankFeedSourceAccount.objects.filter(pk=row.pk).update(**values)
    return APPLIED


def _bank_feed_mapping(connection_id, account: dict, event: Envelope) -> None:
    """The mapping status of a source account the portal created (bankfeeds/)."""
    from bankfeeds.services import mapping_status_observed

    status = account.get("status")
    if event.event_type.endswith(".disconnected"):
        status = "disconnected"
    elif status not in ("connected", "connecting"):
        # Codat's examples show `pending` in a connected event; the event itself says mapped.
        status = "connected"
    mapping_status_observed(
        connection_codat_id=connection_id,
        account_id=_text(account["id"], 255),
        status=status,
        observed_at=event.generated_at,
        feed_start_date=parse_optional_codat_datetime(
            account.get("feedStartDate"), field="sourceAccount.feedStartDate"
        ),
    )


def source_account_connected(event: Envelope) -> str:
    return _source_account_changed(event, connected=True)


def source_account_disconnected(event: Envelope) -> str:
    return _source_account_changed(event, connected=False)


# --- dispatch ----------------------------------------------------------------------------------

HANDLERS: dict[str, Handler] = {
    "company.created": company_created,
    "company.deleted": company_deleted,
    "company.product.added": company_products_changed,
    "company.product.removed": company_products_changed,
    "connection.created": connection_changed,
    "connection.connected": connection_changed,
    "connection.failed": connection_changed,
    "connection.disconnected": connection_changed,
    "connection.reconnected": connection_changed,
    "connection.deleted": connection_deleted,
    "client.rateLimit.reached": client_rate_limit_reached,
    "client.rateLimit.reset": client_rate_limit_reset,
    "bankFeeds.sourceAccount.connected": source_account_connected,
    "bankFeeds.sourceAccount.disconnected": source_account_disconnected,
}


def handler_for(event_type: str) -> Handler | None:
    """The handler of an event type; patterns cover `{dataType}.write.*` and
    `[{productIdentifier}.]read.completed[.successful|.unsuccessful][.initial]`."""
    if event_type in HANDLERS:
        return HANDLERS[event_type]
    if READ_COMPLETED.match(event_type):
        return read_completed
    if DATA_TYPE_WRITE.match(event_type):
        return data_type_write
    return None
