"""Services of the webhook ledger: receipt, processing, replay, re-driving and reconciliation."""

import json
import logging
import time
from datetime import datetime, timedelta

from django.db import (
    DEFAULT_DB_ALIAS,
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connections,
    transaction,
)
from django.utils import timezone
from psycopg.types.json import Jsonb
from redis.exceptions import RedisError

from codat.errors import CodatError
from webhooks.envelope import Unprocessable, company_codat_id, nests_deeper_than, parse_envelope
from webhooks.handlers import handler_for
from webhooks.models import EventState, WebhookEvent

log = logging.getLogger(__name__)

# Processing that has not finished this long after receipt is enqueued again (lost message,
# worker down, transient failure that used up its retries).
UNPROCESSED_AFTER = timedelta(minutes=5)


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
    event_pk, sent_twice = _event_insert_once(
        {
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
    )
    if event_pk is None and not sent_twice:
        return None
    if state == EventState.RECEIVED:
        transaction.on_commit(request_event_drain)
    # Sent twice and nothing returned: the first attempt may have committed before its
    # connection broke. The drain above makes sure the row is processed either way.
    return event_pk


def _event_insert_once(values: dict) -> tuple[int | None, bool]:
    """INSERT a WebhookEvent's `values` (by field name) unless its webhook id is stored already.

    Returns (the new row's id or None, whether the statement had to be sent twice).

    The endpoint's one step below the ORM, kept for what bench/webhook_ingest.py measured on
    2026-11-30: ingest/trivial throughput ratio, medians of runs alternated with the variant
    compared, gunicorn on a core of its own / every core shared. This function: 0.62-0.64 /
    0.49-0.50, where the code it replaced (psycopg's own cursor) ran at 0.56-0.66 / 0.52.

    - The statement: the ORM has no INSERT ... ON CONFLICT DO NOTHING that returns the id.
      Model.save() in a savepoint, a duplicate caught as IntegrityError: 0.37 / 0.30.
      bulk_create(ignore_conflicts=True) returns no id, so a second query: 0.28 (dedicated);
      get_or_create (a SELECT, then a transaction): 0.22. One run each, under a heavier load.
    - No ping: CONN_HEALTH_CHECKS sends `SELECT 1` before a request's first query, which took
      the ratio from 0.49 / 0.50 to 0.42 / 0.37 (a quarter more server CPU a delivery). The
      INSERT is idempotent, so instead a kept connection that turns out dead (the database
      restarted or dropped it) gets it once more on a new connection; a database that is really
      down fails both times, and the view answers 503. No atomic block either: one statement
      commits by itself in autocommit mode, and inside a caller's transaction on_commit still
      waits for that transaction's commit.
    - The values as they are on PostgreSQL: a WebhookEvent instance with its values prepared by
      its fields, as save() does, ran at 0.48-0.57 / 0.46-0.48 against 0.58-0.64 / 0.52-0.53.

    Back with Django: its cursor (psycopg's own, binding server-side, was within 5 %), and the
    statement is built on each call (a few hundredths of a millisecond).
    """
    database = connections[DEFAULT_DB_ALIAS]
    ops, meta = database.ops, WebhookEvent._meta
    fields = [meta.get_field(name) for name in values]
    sql = (
        f"INSERT INTO {ops.quote_name(meta.db_table)} "
        f"({', '.join(ops.quote_name(field.column) for field in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({ops.quote_name(meta.get_field('webhook_id').column)}) DO NOTHING "
        f"RETURNING {ops.quote_name(meta.pk.column)}"
    )
    if database.vendor == "postgresql":
        # psycopg adapts these values as they are (a TextChoices member as its value), the
        # headers once told they are jsonb.
        params = [Jsonb(value) if name == "headers" else value for name, value in values.items()]
    else:
        params = [
            field.get_db_prep_save(value, database)
            for field, value in zip(fields, values.values(), strict=True)
        ]

    def execute() -> tuple | None:
        with database.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()

    # Only a connection kept from an earlier request can be stale; a caller's transaction
    # cannot be retried from here.
    retryable = database.connection is not None and not database.in_atomic_block
    if retryable:
        database.health_check_done = True  # Django's own flag: no ping this request
    try:
        row, sent_twice = execute(), False
    except (OperationalError, InterfaceError):
        if not retryable:
            raise
        log.info("webhooks.receive.stale_connection", exc_info=True)
        database.close()
        row, sent_twice = execute(), True
    return (row[0] if row else None), sent_twice


# How a stored delivery gets processed without each one sending a message of its own (a Celery
# publish costs the endpoint about as much CPU as everything else it does). Drain messages go out
# with a countdown, and each web process remembers when its last one is due to start. A delivery
# committed at least DRAIN_MARGIN_SECONDS before that needs no message: that drain starts after
# the commit, so it will find the row. Only a delivery later than that sends the next message,
# so a burst costs each web process one message a quarter second or so, and no delivery makes
# a round trip to shared state. (A shared "drain requested" flag in Redis did the same job at
# one Redis round trip per delivery, about a sixth of the endpoint's CPU.)
DRAIN_COUNTDOWN_SECONDS = 0.5
# Leaves room for the worker's clock to run ahead of the web host's: a Celery ETA is never
# started early by the worker's own clock.
DRAIN_MARGIN_SECONDS = 0.25
# One drain task works this long at most, then hands the rest to a fresh message, so a backlog
# never runs into the task time limits and other tasks get a turn.
DRAIN_SECONDS = 20.0
DRAIN_BATCH = 200

# Seconds on a clock that never steps back, for the drain schedule and a drain's time limit; both
# compare readings of this process's own clock only. Tests put a clock they move by hand here.
drain_clock = time.monotonic


class _DrainSchedule:
    """When this process's last drain message is due to start (drain_clock); 0 for none.

    Per process on purpose: the rule above holds for each sender by itself, with nothing
    shared. Threads of one process may both send in a race, which costs a spare message only.
    """

    due_at = 0.0


def request_event_drain(*, force: bool = False) -> bool:
    """Make sure a drain task starts after this moment; whether a message was sent.

    Never raises: the rows are durable, and the re-drive job asks again if this is lost.
    `force` sends a message that starts at once, whatever is on its way (the re-drive does,
    because what it finds unprocessed means the last one may not have done its work; so does
    a drain that ran out of time).
    """
    from webhooks.tasks import process_received_events_task

    now = drain_clock()
    if not force and _DrainSchedule.due_at - now >= DRAIN_MARGIN_SECONDS:
        return False
    try:
        if force:
            process_received_events_task.apply_async(retry=False)
        else:
            process_received_events_task.apply_async(countdown=DRAIN_COUNTDOWN_SECONDS, retry=False)
    except Exception:
        # Nothing remembered: the next delivery tries again.
        log.warning("webhooks.drain_request_failed", exc_info=True)
        return False
    if not force:
        # Celery reckons the ETA after `now` was read: the drain is due no earlier than this.
        _DrainSchedule.due_at = now + DRAIN_COUNTDOWN_SECONDS
    return True


def webhook_events_drain(
    *, seconds: float = DRAIN_SECONDS, batch: int = DRAIN_BATCH
) -> dict[str, int]:
    """Process received events, oldest first, until none is left or `seconds` have passed.

    Drains may run side by side: each event is taken under a row lock that the others skip. An
    event whose processing fails for a passing reason (Redis, a Codat call in a handler) is
    noted and left `received`, and the rest go on.

    Returns counts: processed (by this drain), failed (left for a retry), left (still waiting
    when time ran out).
    """
    deadline = drain_clock() + seconds
    counts = {"processed": 0, "failed": 0, "left": 0}
    after = 0
    while True:
        event_pks = list(
            WebhookEvent.objects.filter(state=EventState.RECEIVED, pk__gt=after)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch]
        )
        if not event_pks:
            break
        for event_pk in event_pks:
            if drain_clock() >= deadline:
                counts["left"] = WebhookEvent.objects.filter(
                    state=EventState.RECEIVED, pk__gte=event_pk
                ).count()
                return counts
            try:
                state = webhook_event_process(event_pk=event_pk, skip_locked=True)
            except (RedisError, CodatError) as error:
                # A handler's call to Redis or Codat failed: the event waits, the others go on.
                # (With the database down nothing can go on: DatabaseError ends the drain.)
                log.warning(
                    "webhooks.process.transient", extra={"event_pk": event_pk}, exc_info=True
                )
                webhook_event_record_failure(event_pk=event_pk, error=error)
                counts["failed"] += 1
                continue
            if state is not None:
                counts["processed"] += 1
        after = event_pks[-1]
    return counts


def webhook_event_process(
    *, event_pk: int, replay: bool = False, skip_locked: bool = False
) -> str | None:
    """Apply one stored event through its handler; the event's new state.

    Without `replay`, an event already processed is left alone, so a task delivered twice
    changes nothing. With it, the handlers run again: they are idempotent and never move a
    mirror row back to an older state. With `skip_locked`, an event another worker is
    processing right now is passed over (None) instead of waited for.
    """
    with transaction.atomic():
        event = (
            WebhookEvent.objects.select_for_update(skip_locked=skip_locked)
            .filter(pk=event_pk)
            .first()
        )
        if event is None:
            if not skip_locked:
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
                # Emptied when the event was about an erased company (_apply).
                *(("body", "headers") if not event.body else ()),
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
    if event.company_codat_id and _company_erased(event.company_codat_id):
        # Late news of an erased company (Codat's own company.deleted, most often): applying it
        # would bring the company back, and keeping it would keep its data. Only the fact that
        # an event came is kept.
        event.body, event.headers = "", {}
        return EventState.SUPERSEDED, "The company was erased (GDPR): the event was not kept."
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


def _company_erased(codat_id) -> bool:
    from companies.erasure import company_is_erased

    return company_is_erased(codat_id)


def webhook_event_record_failure(*, event_pk: int, error: BaseException) -> None:
    """Note a transient failure on the event; it stays `received` and is tried again."""
    WebhookEvent.objects.filter(pk=event_pk, state=EventState.RECEIVED).update(
        last_error=f"{type(error).__name__}: {error}"[:2000]
    )


def webhook_events_replay(*, event_pks) -> dict[str, int]:
    """Run events through the handlers again (admin "replay"); a count per resulting state."""
    from audit.services import audit_record

    counts: dict[str, int] = {}
    event_pks = sorted(event_pks)
    for event_pk in event_pks:
        state = webhook_event_process(event_pk=event_pk, replay=True)
        if state is not None:
            counts[state] = counts.get(state, 0) + 1
    audit_record(
        action="webhooks.replay",
        target_type="webhooks.webhookevent",
        target_id=",".join(str(pk) for pk in event_pks[:20]),
        target_label=f"{len(event_pks)} webhook event(s)",
        changes={"event_ids": event_pks[:500], "outcomes": counts},
    )
    return counts


def webhook_events_requeue_unprocessed(*, now: datetime | None = None) -> int:
    """Send a drain if events received a while ago are still not processed; how many there are.

    They were left by a lost message (Redis flushed or down, a worker killed mid-drain) or by a
    passing failure; a drain takes them all, and the newer ones with them.
    """
    cutoff = (now or timezone.now()) - UNPROCESSED_AFTER
    waiting = WebhookEvent.objects.filter(state=EventState.RECEIVED, received_at__lt=cutoff).count()
    if waiting:
        request_event_drain(force=True)
    return waiting


def pretty_body(event: WebhookEvent) -> str:
    """The body indented for the ledger page; as it came when it is not JSON or nests too deep
    to indent (an event stored before the endpoint refused such bodies)."""
    if nests_deeper_than(event.body):
        return event.body
    try:
        return json.dumps(json.loads(event.body), indent=2, sort_keys=True)
    except (ValueError, RecursionError):
        return event.body


# -- GDPR erasure ----------------------------------------------------------------------------


@transaction.atomic
def company_webhook_data_erase(*, company) -> dict[str, int]:
    """Every webhook event about an erased company (matched by its Codat id too: an event the
    ledger could not tie to the row), and the write outcomes and bank-feed source accounts
    the webhooks fed."""
    from django.db.models import Q

    from webhooks.models import BankFeedSourceAccount, WriteOutcome

    about = Q(company=company) | Q(company_codat_id=company.codat_id)
    return {
        "webhook events": WebhookEvent.objects.filter(about).delete()[0],
        "write outcomes": WriteOutcome.objects.filter(company=company).delete()[0],
        "webhook source accounts": BankFeedSourceAccount.objects.filter(company=company).delete()[
            0
        ],
    }
