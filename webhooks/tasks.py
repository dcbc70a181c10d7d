"""Celery tasks of the webhooks app. They take ids, and call services."""

import logging

from celery import shared_task
from django.db import DatabaseError

log = logging.getLogger(__name__)

# Retries stay well under the broker's visibility timeout; longer waits are the periodic
# re-queue's job (the events are in PostgreSQL). Results live in the rows too: with a Redis
# result backend, sending a task whose result is kept also subscribes the sender to its result
# channel, a cost the webhook endpoint must not pay on every delivery.
RETRY_OPTIONS = {"max_retries": 5, "ignore_result": True}


# A drain that met passing failures asks for one more drain this much later; what still fails
# then is the periodic re-drive's.
FAILED_EVENTS_RETRY_SECONDS = 30


@shared_task(name="webhooks.tasks.process_received_events", bind=True, **RETRY_OPTIONS)
def process_received_events_task(self, retrying_failures: bool = False) -> dict:
    """Apply every received event (see webhook_events_drain); one message serves a burst."""
    from webhooks.services import request_event_drain, webhook_events_drain

    try:
        counts = webhook_events_drain()
    except DatabaseError as error:
        log.warning("webhooks.drain.database_error", exc_info=True)
        raise self.retry(exc=error, countdown=min(300, 5 * 2**self.request.retries)) from error
    if counts["left"]:
        # Out of time with events still waiting: a fresh message goes on with them.
        request_event_drain(force=True)
    elif counts["failed"] and not retrying_failures:
        try:
            process_received_events_task.apply_async((True,), countdown=FAILED_EVENTS_RETRY_SECONDS)
        except Exception:
            # The periodic re-drive takes the failed events up a few minutes later instead.
            log.warning("webhooks.drain.retry_not_sent", exc_info=True)
    return counts


@shared_task(name="webhooks.tasks.requeue_unprocessed_events", acks_late=False)
def requeue_unprocessed_events_task() -> int:
    from webhooks.services import webhook_events_requeue_unprocessed

    return webhook_events_requeue_unprocessed()


@shared_task(name="webhooks.tasks.reconcile_missed_events", acks_late=False)
def reconcile_missed_events_task(limit: int = 50) -> int:
    from webhooks.reconciliation import missed_events_reconcile_next

    return missed_events_reconcile_next(limit=limit)


@shared_task(name="webhooks.tasks.import_webhook_consumers", acks_late=False)
def import_webhook_consumers_task() -> int:
    """Hourly: one list-consumers operation row (the operation worker makes the call)."""
    from webhooks.consumers import webhook_consumers_list_request

    return webhook_consumers_list_request().pk
