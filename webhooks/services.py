"""Services of the webhook ledger: receipt, processing, replay, re-driving and reconciliation."""

import json
import logging
from datetime import datetime, timedelta

from django.db import DataError, IntegrityError, connection, transaction
from django.utils import timezone

from webhooks.envelope import Unprocessable, company_codat_id, parse_envelope
from webhooks.handlers import handler_for
from webhooks.models import EventState, WebhookEvent

log = logging.getLogger(__name__)

# Processing that has not finished this long after receipt is enqueued again (lost message,
# worker down, transient failure that used up its retries).
UNPROCESSED_AFTER = timedelta(minutes=5)
REQUEUE_BATCH = 500


def _insert_event_sql() -> str:
    table = connection.ops.quote_name(WebhookEvent._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(column) for column in _INSERT_COLUMNS)
    placeholders = ", ".join(["%s"] * len(_INSERT_COLUMNS))
    return (
        f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) "
        f'ON CONFLICT ("webhook_id") DO NOTHING RETURNING "id"'
    )


_INSERT_COLUMNS = (
    "webhook_id",
    "event_id",
    "event_type",
    "generated_at",
    "company_codat_id",
    "body",
    "headers",
    "signed_at",
    "state",
    "state_reason",
    "times_processed",
    "last_error",
    "received_at",
)


def webhook_event_receive(
    *, webhook_id: str, body: str, headers: dict, signed_at: datetime | None
) -> int | None:
    """Store a verified delivery once per `webhook_id`; the new row's id, or None for a duplicate.

    One `INSERT ... ON CONFLICT DO NOTHING`: a retry of a message already stored costs one
    statement and changes nothing, even when two deliveries of it race. Processing is enqueued
    only after the row is committed. A signed body that cannot be read is stored quarantined
    (Codat would otherwise retry it for 28 hours) and not processed.
    """
    state, reason = EventState.RECEIVED, ""
    event_id = event_type = ""
    generated_at = company_id = None
    try:
        envelope = parse_envelope(body)
    except Unprocessable as error:
        state, reason = EventState.QUARANTINED, str(error)
    else:
        event_id, event_type = envelope.event_id, envelope.event_type
        generated_at, company_id = envelope.generated_at, company_codat_id(envelope)
    values = {
        "webhook_id": webhook_id,
        "event_id": event_id,
        "event_type": event_type,
        "generated_at": generated_at,
        "company_codat_id": company_id,
        "body": body,
        "headers": headers,
        "signed_at": signed_at,
        "state": state,
        "state_reason": reason,
        "times_processed": 0,
        "last_error": "",
        "received_at": timezone.now(),
    }
    fields = {field.name: field for field in WebhookEvent._meta.concrete_fields}
    params = [fields[name].get_db_prep_save(values[name], connection) for name in _INSERT_COLUMNS]
    # No atomic block: one statement commits by itself in autocommit mode, which saves the
    # endpoint a round trip. Inside a caller's transaction, on_commit still waits for its commit.
    with connection.cursor() as cursor:
        cursor.execute(_insert_event_sql(), params)
        row = cursor.fetchone()
    if row is None:
        return None
    event_pk = row[0]
    if state == EventState.RECEIVED:
        transaction.on_commit(lambda: enqueue_event_processing(event_pk))
    return event_pk


def enqueue_event_processing(event_pk: int) -> None:
    """Hand an event to the workers. Never raises: the row is durable, and the re-drive job
    enqueues it again if this message is lost (Redis down, full, flushed)."""
    from webhooks.tasks import process_event_task

    try:
        process_event_task.apply_async((event_pk,), retry=False)
    except Exception:
        log.warning("webhooks.enqueue_failed", extra={"event_pk": event_pk}, exc_info=True)


def webhook_event_process(*, event_pk: int, replay: bool = False) -> str | None:
    """Apply one stored event through its handler; the event's new state.

    Without `replay`, an event already processed is left alone, so a task delivered twice
    changes nothing. With it, the handlers run again: they are idempotent and never move a
    mirror row back to an older state.
    """
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().filter(pk=event_pk).first()
        if event is None:
            log.info("webhooks.process.missing_event", extra={"event_pk": event_pk})
            return None
        if event.state == EventState.MISSED:
            return event.state
        if event.state != EventState.RECEIVED and not replay:
            return event.state
        state, reason = _apply(event)
        event.state = state
        event.state_reason = reason
        event.last_error = ""
        event.times_processed += 1
        event.processed_at = timezone.now()
        if event.company_codat_id and event.company_id is None:
            from companies.models import Company

            event.company = Company.objects.filter(codat_id=event.company_codat_id).first()
        event.save(
            update_fields=[
                "state",
                "state_reason",
                "last_error",
                "times_processed",
                "processed_at",
                "company",
                "event_type",
                "event_id",
                "generated_at",
                "company_codat_id",
            ]
        )
        return state


def _apply(event: WebhookEvent) -> tuple[str, str]:
    try:
        envelope = parse_envelope(event.body)
    except Unprocessable as error:
        return EventState.QUARANTINED, str(error)
    event.event_id, event.event_type = envelope.event_id, envelope.event_type
    event.generated_at, event.company_codat_id = envelope.generated_at, company_codat_id(envelope)
    handler = handler_for(envelope.event_type)
    if handler is None:
        return EventState.UNKNOWN_TYPE, f"no handler for event type {envelope.event_type!r}"
    try:
        # A savepoint, so a handler that fails half-way leaves nothing behind.
        with transaction.atomic():
            return handler(envelope), ""
    except (Unprocessable, KeyError, TypeError, ValueError, DataError, IntegrityError) as error:
        reason = (
            str(error) if isinstance(error, Unprocessable) else f"{type(error).__name__}: {error}"
        )
        log.warning(
            "webhooks.process.quarantined",
            extra={"event_pk": event.pk, "event_type": envelope.event_type, "reason": reason},
        )
        return EventState.QUARANTINED, reason


def webhook_event_record_failure(*, event_pk: int, error: BaseException) -> None:
    """Note a transient failure on the event; it stays `received` and is tried again."""
    WebhookEvent.objects.filter(pk=event_pk, state=EventState.RECEIVED).update(
        last_error=f"{type(error).__name__}: {error}"[:2000]
    )


def webhook_events_replay(*, event_pks) -> dict[str, int]:
    """Run events through the handlers again (admin "replay"); a count per resulting state."""
    counts: dict[str, int] = {}
    for event_pk in sorted(event_pks):
        state = webhook_event_process(event_pk=event_pk, replay=True)
        if state is not None:
            counts[state] = counts.get(state, 0) + 1
    return counts


def webhook_events_requeue_unprocessed(*, now: datetime | None = None) -> int:
    """Enqueue again the events received a while ago and still not processed."""
    cutoff = (now or timezone.now()) - UNPROCESSED_AFTER
    event_pks = list(
        WebhookEvent.objects.filter(state=EventState.RECEIVED, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:REQUEUE_BATCH]
    )
    for event_pk in event_pks:
        enqueue_event_processing(event_pk)
    return len(event_pks)


def pretty_body(event: WebhookEvent) -> str:
    try:
        return json.dumps(json.loads(event.body), indent=2, sort_keys=True)
    except ValueError:
        return event.body
