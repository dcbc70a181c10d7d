"""The sweeper (beat, and woken early when a long wait ends): nothing waits on Redis alone.

It re-sends the rows whose time has come and that no queue holds, frees the rows of workers that
died or hung holding them, and gives up on a row that keeps killing its workers.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from companies.models import Company, Connection, ConnectionStatus
from operations import limiter, queue
from operations.kinds import spec_for
from operations.models import Operation, OperationState
from operations.worker import outcome_applied

logger = logging.getLogger(__name__)


def _broker_queue_is_empty() -> bool:
    from operations.tasks import QUEUE

    try:
        return limiter.redis_client().llen(QUEUE) == 0
    except Exception:
        return False


def operations_sweep(*, batch: int = 2000, now: datetime | None = None) -> dict[str, int]:
    """Re-send rows whose time has come and that no queue holds, and free rows of dead workers.

    A row is presumed lost from Redis when it was never sent, when its message is older than
    the broker's visibility timeout, or when the queue is empty (Redis flushed or restarted).
    Duplicates are harmless: the claim lets only one run.
    """
    now = now or timezone.now()
    stuck_before = now - timedelta(seconds=settings.CODAT_OPERATIONS_STUCK_SECONDS)
    stuck = Operation.objects.filter(state=OperationState.RUNNING, claimed_at__lt=stuck_before)
    given_up = _fail_rows_that_keep_killing_workers(stuck, now=now)
    freed = stuck.update(
        state=OperationState.PENDING,
        claim_token=None,
        next_attempt_at=now,
        enqueued_at=None,
        abandoned_claims=F("abandoned_claims") + 1,
    )
    due = Operation.objects.filter(state=OperationState.PENDING, next_attempt_at__lte=now)
    if not _broker_queue_is_empty():
        lost_before = now - timedelta(seconds=settings.CELERY_VISIBILITY_TIMEOUT)
        due = due.filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=lost_before))
    ids = list(due.order_by("next_attempt_at", "id").values_list("pk", flat=True)[:batch])
    if ids:
        Operation.objects.filter(pk__in=ids).update(enqueued_at=now)
        queue.enqueue(ids)
    _refresh_daily_quota_estimate()
    if freed or ids or given_up:
        logger.info(
            "operations.swept", extra={"freed": freed, "resent": len(ids), "given_up": given_up}
        )
    return {"freed": freed, "resent": len(ids), "given_up": given_up}


def _fail_rows_that_keep_killing_workers(stuck, *, now: datetime) -> int:
    """Fail the stuck rows whose worker has died or hung on them too often; how many."""
    limit = settings.CODAT_OPERATIONS_MAX_ABANDONED_CLAIMS
    error = (
        f"gave up: the worker running this row died or hung {limit} times "
        "(see the worker's log for the crash)"
    )
    given_up = 0
    # Rare (a row that crashes its worker), so one row at a time, each with what it changes.
    for operation in stuck.filter(abandoned_claims__gte=limit - 1).select_related("consumer"):
        with transaction.atomic():
            failed = Operation.objects.filter(
                pk=operation.pk, state=OperationState.RUNNING, claim_token=operation.claim_token
            ).update(
                state=OperationState.FAILED,
                finished_at=now,
                claim_token=None,
                abandoned_claims=F("abandoned_claims") + 1,
                last_error=error,
                last_error_status=None,
                last_error_correlation_id="",
            )
            if failed:
                outcome_applied(
                    spec_for(operation.kind),
                    operation,
                    state=OperationState.FAILED,
                    error=error,
                    now=now,
                )
                given_up += 1
    if given_up:
        logger.error("operations.given_up_on_worker_crashes", extra={"count": given_up})
    return given_up


def _refresh_daily_quota_estimate() -> None:
    # EXISTS, not a join and DISTINCT: a semi-join over the connections' (status) rows.
    linked = Company.objects.filter(
        Exists(Connection.objects.filter(company=OuterRef("pk"), status=ConnectionStatus.LINKED))
    ).count()
    try:
        limiter.set_daily_quota_estimate(1000 * (1 + linked))
    except Exception:
        logger.exception("operations.quota_estimate_failed")
