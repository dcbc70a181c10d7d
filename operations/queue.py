"""Handing operation ids to the workers. Redis only ever carries ids; the rows are in PostgreSQL,
so an id lost here delays its row until the sweeper re-sends it, and loses nothing."""

import logging
from collections.abc import Sequence

from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue_on_commit(operation_ids: list[int]) -> None:
    if operation_ids:
        transaction.on_commit(lambda: enqueue(operation_ids))


def enqueue(operation_ids: Sequence[int], *, countdown: float | None = None) -> int:
    """Send ids to the workers; how many were sent."""
    from operations.tasks import QUEUE, run_operation_task

    sent = 0
    try:
        with run_operation_task.app.producer_or_acquire() as producer:
            for operation_id in operation_ids:
                run_operation_task.apply_async(
                    (operation_id,), countdown=countdown, producer=producer, queue=QUEUE
                )
                sent += 1
    except Exception:
        # Redis down: the rows are committed, so the work is delayed, not lost.
        logger.exception("operations.enqueue_failed", extra={"count": len(operation_ids)})
    return sent
