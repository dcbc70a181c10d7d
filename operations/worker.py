"""The worker's side of an operation row: claim it, ask the fleet limiter, call Codat, record.

`operation_run` is what the Celery task calls with a row's id. It claims the row with a
conditional UPDATE (a second message for the same row finds nothing to do), makes the kind's
call (operations/kinds.py) through the process's Codat client, and records the outcome with
what it changes, in one transaction. Transient failures come back later with backoff; long
waits (Codat's Retry-After, the daily quota) stay in PostgreSQL for the sweeper.
"""

from __future__ import annotations

import enum
import logging
import random
import time
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from codat import errors as codat_errors
from companies.services import product_reads_follow
from core.codat_client import codat_client
from operations import limiter, queue
from operations.kinds import KINDS_WITH_OPPOSITE, OperationSpec, spec_for
from operations.models import Operation, OperationState
from operations.planning import companies_refused_for_consent
from products.models import CompanyProduct

logger = logging.getLogger(__name__)

# Waits up to this long are sent back to Celery with a countdown (well under the broker's
# visibility timeout); longer ones stay in next_attempt_at for the sweeper (invariant 2).
SHORT_WAIT_SECONDS = 10.0
# A change waits this long for the opposite change of the same target to finish.
ORDERING_WAIT_SECONDS = 2.0


class RunOutcome(enum.StrEnum):
    """What one `operation_run` did, for logs and tests."""

    NOT_DUE = "not-due"  # done, claimed elsewhere, cancelled, or a duplicate message
    NOT_CLAIMED = "not-claimed"  # another worker claimed it between the read and the claim
    CANCELLED = "cancelled"  # consent no longer allows the call
    WAITING = "waiting"  # the opposite change of the same target is running
    PAUSED = "paused"  # Codat asked the fleet to wait (429, the daily quota)
    LIMITED = "limited"  # over the fleet's budget; the row waits, unclaimed
    RATE_LIMITED = "rate-limited"  # this call got a 429
    JOINED = "joined"
    SUCCEEDED = "succeeded"
    RETRYING = "retrying"
    FAILED = "failed"


def operation_run(*, operation_id: int) -> RunOutcome:
    """Attempt one row, once."""
    now = timezone.now()
    # The opposite change of the same target (an add while a removal runs) is read in the same
    # query: each round trip counts when the fleet runs at Codat's ceiling.
    same_target = Q(company_id=OuterRef("company_id"), product_id=OuterRef("product_id")) | Q(
        consumer_id=OuterRef("consumer_id")
    )
    opposite_running = Exists(
        Operation.objects.filter(
            same_target, kind__in=KINDS_WITH_OPPOSITE, state=OperationState.RUNNING
        ).exclude(kind=OuterRef("kind"))
    )
    operation = (
        Operation.objects.select_related("company", "product", "consumer")
        .annotate(opposite_running=opposite_running)
        .filter(pk=operation_id, state=OperationState.PENDING, next_attempt_at__lte=now)
        .first()
    )
    if operation is None:
        return RunOutcome.NOT_DUE
    spec = spec_for(operation.kind)
    refusal = _refused_for_consent_now(spec, operation)
    if refusal:
        Operation.objects.filter(pk=operation_id, state=OperationState.PENDING).update(
            state=OperationState.CANCELLED, finished_at=now, last_error=f"consent: {refusal}"
        )
        return RunOutcome.CANCELLED
    if spec.opposite and operation.opposite_running:
        _park(
            operation_id,
            until=now + timedelta(seconds=ORDERING_WAIT_SECONDS),
            reason="opposite change running",
        )
        return RunOutcome.WAITING
    company_codat_id = str(operation.company.codat_id) if operation.company else None
    permit = limiter.acquire(company_id=company_codat_id)
    if not permit.granted:
        # Paused (429, quota spent) or over budget: the row waits in PostgreSQL, unclaimed.
        _park(operation_id, until=permit.resume_at + _spread(permit.wait), reason=permit.reason)
        paused = permit.reason == limiter.PermitReason.PAUSED
        return RunOutcome.PAUSED if paused else RunOutcome.LIMITED
    try:
        token = uuid.uuid4()
        claimed = Operation.objects.filter(
            pk=operation_id, state=OperationState.PENDING, next_attempt_at__lte=now
        ).update(
            state=OperationState.RUNNING,
            claimed_at=timezone.now(),
            claim_token=token,
            attempts=F("attempts") + 1,
        )
        if claimed != 1:
            return RunOutcome.NOT_CLAIMED
        operation.attempts += 1
        if permit.delay:
            time.sleep(permit.delay)
            # The pause may have begun while this worker waited for its slot.
            paused_until = limiter.codat_calls_paused_until()
            if paused_until is not None:
                _unclaim(operation, token, until=paused_until + _spread())
                return RunOutcome.PAUSED
        return _attempt(spec, operation, token)
    finally:
        limiter.release(permit)


def _refused_for_consent_now(spec: OperationSpec, operation: Operation) -> str:
    """Why consent no longer allows this read ("" if it does). Adds are not asked here: a
    withdrawal writes the removal, which cancels a pending add of the same product."""
    if not spec.consent_again_before_call:
        return ""
    refused = companies_refused_for_consent(
        spec,
        company_ids=[operation.company_id],
        product=operation.product,
        data_types=operation.data_types,
    )
    return refused.get(operation.company_id, "")


# What a kind's call raises when the row cannot become a request at all (a parameter missing
# or of the wrong shape, as in a row written by a form that accepted a kind it should not have).
NOT_ATTEMPTABLE = (KeyError, TypeError, ValueError)


def _attempt(spec: OperationSpec, operation: Operation, token: uuid.UUID) -> RunOutcome:
    client = codat_client()
    try:
        answer = spec.call(client, operation)
    except NOT_ATTEMPTABLE as error:
        # No retry would change the row, and an exception would crash the task and leave the
        # row running until the sweeper gave up on it: it fails now, saying why.
        reason = f"cannot be attempted: {type(error).__name__}: {error}"
        logger.warning(
            "operations.not_attemptable", extra={"operation": operation.pk, "reason": reason}
        )
        _finish(spec, operation, token, state=OperationState.FAILED, reason=reason)
        return RunOutcome.FAILED
    except codat_errors.CodatRateLimited as error:
        until = limiter.pause_for(error)
        _reschedule(operation, token, error=error, until=until + _spread(), transient=False)
        return RunOutcome.RATE_LIMITED
    except codat_errors.CodatReadInProgress as error:
        limiter.observe(error.rate_limit)
        _finish(spec, operation, token, state=OperationState.JOINED, error=error)
        return RunOutcome.JOINED
    except codat_errors.CodatError as error:
        limiter.observe(error.rate_limit)
        if isinstance(error, codat_errors.CodatNotFound) and spec.not_found_is_success:
            _finish(spec, operation, token, state=OperationState.SUCCEEDED, answer={"absent": True})
            return RunOutcome.SUCCEEDED
        if error.is_transient:
            failures = operation.transient_failures + 1
            if failures >= settings.CODAT_OPERATIONS_MAX_ATTEMPTS:
                _finish(
                    spec, operation, token, state=OperationState.FAILED, error=error, gave_up=True
                )
                return RunOutcome.FAILED
            until = timezone.now() + timedelta(seconds=_backoff_seconds(failures))
            _reschedule(operation, token, error=error, until=until, transient=True)
            return RunOutcome.RETRYING
        _finish(spec, operation, token, state=OperationState.FAILED, error=error)
        return RunOutcome.FAILED
    limiter.observe(client.last_rate_limit)
    _finish(spec, operation, token, state=OperationState.SUCCEEDED, answer=answer or {})
    return RunOutcome.SUCCEEDED


def _error_fields(
    error: codat_errors.CodatError | None, *, gave_up: bool = False, reason: str = ""
) -> dict:
    if error is None:
        return {
            "last_error": reason[:5000],
            "last_error_status": None,
            "last_error_correlation_id": "",
        }
    text = error.error or str(error)
    if gave_up:
        text = f"gave up after {settings.CODAT_OPERATIONS_MAX_ATTEMPTS} transient failures: {text}"
    return {
        "last_error": text[:5000],
        "last_error_status": error.http_status,
        "last_error_correlation_id": (error.correlation_id or "")[:100],
    }


@transaction.atomic
def _finish(
    spec: OperationSpec,
    operation: Operation,
    token: uuid.UUID,
    *,
    state: str,
    error: codat_errors.CodatError | None = None,
    answer: dict | None = None,
    gave_up: bool = False,
    reason: str = "",
) -> None:
    now = timezone.now()
    fields = {
        "state": state,
        "finished_at": now,
        "claim_token": None,
        **_error_fields(error, reason=reason),
    }
    result = answer or {}
    if state == OperationState.SUCCEEDED and spec.record_success and "absent" not in result:
        result, changes = spec.record_success(operation, result)
        fields.update(changes)
    fields["result"] = result
    # Only the claim this worker holds may be finished: if the sweeper presumed this worker
    # dead and another took over, the other's outcome stands.
    if not Operation.objects.filter(pk=operation.pk, claim_token=token).update(**fields):
        logger.warning("operations.claim_lost", extra={"operation": operation.pk})
        return
    outcome_applied(spec, operation, state=state, error=fields["last_error"], now=now)


def outcome_applied(
    spec: OperationSpec, operation: Operation, *, state: str, error: str, now: datetime
) -> None:
    """What the row's outcome changes outside the row: the desired state follows the outcome,
    unless a later wish has replaced it."""
    status = spec.assignment_after(state)
    if status is not None:
        assignment = CompanyProduct.objects.filter(
            company_id=operation.company_id, product_id=operation.product_id
        )
        if assignment.filter(status=spec.assignment.written).update(
            status=status, status_changed_at=now
        ):
            product_reads_follow(assignment)
    if spec.after_finish is not None:
        spec.after_finish(operation, state, error)


def _reschedule(
    operation: Operation,
    token: uuid.UUID,
    *,
    error: codat_errors.CodatError,
    until: datetime,
    transient: bool,
) -> None:
    updated = Operation.objects.filter(pk=operation.pk, claim_token=token).update(
        state=OperationState.PENDING,
        claim_token=None,
        next_attempt_at=until,
        enqueued_at=None,
        transient_failures=F("transient_failures") + (1 if transient else 0),
        **_error_fields(error),
    )
    if updated:
        _resend_later(operation.pk, until)


def _unclaim(operation: Operation, token: uuid.UUID, *, until: datetime) -> None:
    """Give a claimed row back without counting the attempt (no call was made)."""
    Operation.objects.filter(pk=operation.pk, claim_token=token).update(
        state=OperationState.PENDING,
        claim_token=None,
        next_attempt_at=until,
        enqueued_at=None,
        attempts=F("attempts") - 1,
    )
    _resend_later(operation.pk, until)


def _backoff_seconds(failures: int) -> float:
    base = settings.CODAT_OPERATIONS_RETRY_BASE_SECONDS
    cap = settings.CODAT_OPERATIONS_RETRY_MAX_SECONDS
    delay = min(cap, base * 2 ** max(0, failures - 1))
    # Jitter spreads the retries of a fleet that failed together (a Codat outage).
    return delay * random.uniform(0.5, 1.5)


def _spread(wait: float = 1.0) -> timedelta:
    return timedelta(seconds=random.uniform(0, min(2.0, max(0.05, wait * 0.1))))


def _park(operation_id: int, *, until: datetime, reason: str) -> None:
    """Give a row back, unclaimed, with its next attempt at `until`."""
    Operation.objects.filter(pk=operation_id, state=OperationState.PENDING).update(
        next_attempt_at=until, enqueued_at=None
    )
    _resend_later(operation_id, until)
    logger.debug("operations.parked", extra={"operation": operation_id, "reason": reason})


def _resend_later(operation_id: int, until: datetime) -> None:
    wait = (until - timezone.now()).total_seconds()
    if wait <= SHORT_WAIT_SECONDS:
        Operation.objects.filter(pk=operation_id).update(enqueued_at=timezone.now())
        queue.enqueue([operation_id], countdown=max(0.0, wait))
    else:
        _wake_sweeper_at(until)


def _wake_sweeper_at(until: datetime) -> None:
    """One sweep when a long wait ends, so the fleet resumes without waiting for beat."""
    from operations.tasks import QUEUE, sweep_task

    wait = (until - timezone.now()).total_seconds()
    if wait > settings.CELERY_VISIBILITY_TIMEOUT / 2:
        return  # beat's regular sweep picks the rows up
    marker = f"codat:operations:wake:{int(until.timestamp())}"
    try:
        if limiter.redis_client().set(marker, 1, nx=True, ex=int(wait) + 60):
            sweep_task.apply_async(countdown=wait + random.uniform(0.2, 1.0), queue=QUEUE)
    except Exception:
        logger.exception("operations.wake_failed")
