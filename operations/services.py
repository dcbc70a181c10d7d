"""The one way to change anything at Codat: the admin, the API, consent and webhooks call these.

Each service writes the desired state and one Operation row per Codat call in one transaction,
and hands the ids to Celery only after the commit. The worker side (`operation_run`) claims a row
with a conditional UPDATE, asks the fleet limiter, calls Codat through `codat/`, and records the
outcome together with the mirror it changes. `operations_sweep` (beat) re-sends rows whose time
has come or whose worker died; `mirror_reconcile` (beat) heals the mirror from Codat.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, Max, OuterRef, Q
from django.utils import timezone

from codat import errors as codat_errors
from codat.client import CodatClient
from companies.models import Company, Connection, ConnectionStatus
from consent import selectors as consent_selectors
from core.codat_client import codat_client
from operations import limiter
from operations.models import (
    ACTIVE_STATES,
    Job,
    Operation,
    OperationKind,
    OperationState,
)
from products.models import CompanyProduct, CompanyProductStatus, Product, ProductKind

logger = logging.getLogger(__name__)

# Waits up to this long are sent back to Celery with a countdown (well under the broker's
# visibility timeout); longer ones stay in next_attempt_at for the sweeper (invariant 2).
SHORT_WAIT_SECONDS = 10.0
# A product change waits this long for the opposite change of the same product to finish.
ORDERING_WAIT_SECONDS = 2.0
# Codat tag that makes a retried create-company find the company an earlier attempt created.
IDEMPOTENCY_TAG = "portalOperation"
CHUNK = 500


class OperationRefused(Exception):
    """The request cannot be turned into a Codat call; the message says why, for people."""


# -- planning: which companies get a row --------------------------------------------------------


def dedupe_key(
    *,
    kind: str,
    company_id: int | None,
    product_id: int | None = None,
    data_types: Sequence[str] = (),
    extra: str = "",
) -> str:
    types = ",".join(sorted(data_types))
    return f"{kind}:{company_id}:{product_id or ''}:{types}:{extra}"[:200]


OPPOSITE = {
    OperationKind.ADD_PRODUCT: OperationKind.REMOVE_PRODUCT,
    OperationKind.REMOVE_PRODUCT: OperationKind.ADD_PRODUCT,
}


@dataclass
class Plan:
    """What a request will do, company by company; `preview` fills it without writing."""

    kind: str
    queued: list[int] = field(default_factory=list)  # company pks that get a new row
    joined: dict[int, Operation] = field(default_factory=dict)  # an identical row is live
    skipped: dict[int, str] = field(default_factory=dict)  # company pk -> reason
    operations: list[Operation] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {
            "queued": len(self.queued),
            "joined": len(self.joined),
            "skipped": len(self.skipped),
        }

    def skipped_reasons(self) -> dict[str, int]:
        reasons: dict[str, int] = {}
        for reason in self.skipped.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        return reasons


def _check_request(kind: str, product: Product | None, data_types: Sequence[str]) -> None:
    needs_product = (
        OperationKind.ADD_PRODUCT,
        OperationKind.REMOVE_PRODUCT,
        OperationKind.REFRESH_PRODUCT,
    )
    if kind in needs_product and product is None:
        raise OperationRefused("Choose a product.")
    if kind == OperationKind.REFRESH_PRODUCT:
        if product.kind == ProductKind.STANDARD:
            raise OperationRefused(
                f"{product.name} is a standard product: Codat does not refresh standard products"
                ' on request (it answers "doesn\'t support data refreshing"); their data is read'
                " on Codat's own schedule. Only custom products can be refreshed."
            )
        allowed = set(product.product_data_types.values_list("data_type_id", flat=True))
        unknown = sorted(set(data_types) - allowed)
        if unknown:
            raise OperationRefused(
                f"{', '.join(unknown)} is not a data type of {product.name}. "
                f"Valid options: {', '.join(sorted(allowed))}."
            )
    if kind == OperationKind.REFRESH_DATA_TYPE and len(data_types) != 1:
        raise OperationRefused("Choose exactly one data type to refresh.")


def _plan_chunk(
    plan: Plan,
    *,
    company_ids: list[int],
    product: Product | None,
    data_types: Sequence[str],
    extra: str,
) -> None:
    kind = plan.kind
    keys = {
        company_id: dedupe_key(
            kind=kind,
            company_id=company_id,
            product_id=product.pk if product else None,
            data_types=data_types,
            extra=extra,
        )
        for company_id in company_ids
    }
    live = {
        op.dedupe_key: op
        for op in Operation.objects.filter(dedupe_key__in=keys.values(), state__in=ACTIVE_STATES)
    }
    if kind in (OperationKind.ADD_PRODUCT, OperationKind.REFRESH_PRODUCT):
        refused = consent_selectors.companies_refused_for_consent(
            company_ids=company_ids, product=product, data_types=data_types or None
        )
    elif kind in (OperationKind.REFRESH_ALL_DATA, OperationKind.REFRESH_DATA_TYPE):
        refused = consent_selectors.companies_refused_for_consent(
            company_ids=company_ids, product=None, data_types=data_types or None
        )
    else:
        refused = {}
    assignments = {}
    if product is not None:
        assignments = {
            cp.company_id: cp
            for cp in CompanyProduct.objects.filter(company_id__in=company_ids, product=product)
        }
    for company_id in company_ids:
        existing = live.get(keys[company_id])
        if existing is not None:
            plan.joined[company_id] = existing
            continue
        if company_id in refused:
            plan.skipped[company_id] = refused[company_id]
            continue
        assignment = assignments.get(company_id)
        status = assignment.status if assignment else None
        if kind == OperationKind.ADD_PRODUCT and status == CompanyProductStatus.ACTIVE:
            plan.skipped[company_id] = f"already has {product.name}"
            continue
        if kind == OperationKind.REMOVE_PRODUCT and status in (
            None,
            CompanyProductStatus.REMOVED,
        ):
            plan.skipped[company_id] = f"does not have {product.name}"
            continue
        if kind == OperationKind.REFRESH_PRODUCT and status != CompanyProductStatus.ACTIVE:
            plan.skipped[company_id] = f"{product.name} is not active for this company"
            continue
        plan.queued.append(company_id)


def _write_chunk(
    plan: Plan,
    *,
    company_ids: list[int],
    product: Product | None,
    data_types: Sequence[str],
    extra: str,
    parameters: dict,
    job: Job | None,
    requested_by,
    now: datetime,
) -> list[Operation]:
    kind = plan.kind
    if not company_ids:
        return []
    if kind in OPPOSITE:
        # The newest wish wins: a pending opposite change of the same product is cancelled. A
        # running one is left to finish; the new row waits for it (see _wait_for_opposite).
        opposite_keys = [
            dedupe_key(kind=OPPOSITE[kind], company_id=company_id, product_id=product.pk)
            for company_id in company_ids
        ]
        Operation.objects.filter(dedupe_key__in=opposite_keys, state=OperationState.PENDING).update(
            state=OperationState.CANCELLED,
            finished_at=now,
            last_error=f"superseded by a later {OperationKind(kind).label.lower()}",
        )
        desired = (
            CompanyProductStatus.PENDING_ADD
            if kind == OperationKind.ADD_PRODUCT
            else CompanyProductStatus.PENDING_REMOVAL
        )
        existing = set(
            CompanyProduct.objects.filter(company_id__in=company_ids, product=product).values_list(
                "company_id", flat=True
            )
        )
        CompanyProduct.objects.filter(company_id__in=company_ids, product=product).update(
            status=desired, status_changed_at=now
        )
        CompanyProduct.objects.bulk_create(
            [
                CompanyProduct(
                    company_id=company_id, product=product, status=desired, status_changed_at=now
                )
                for company_id in company_ids
                if company_id not in existing
            ]
        )
    operations = [
        Operation(
            kind=kind,
            company_id=company_id,
            product=product,
            data_types=list(data_types),
            parameters=parameters,
            state=OperationState.PENDING,
            next_attempt_at=now,
            enqueued_at=now,
            dedupe_key=dedupe_key(
                kind=kind,
                company_id=company_id,
                product_id=product.pk if product else None,
                data_types=data_types,
                extra=extra,
            ),
            requested_by=requested_by,
            job=job,
        )
        for company_id in company_ids
    ]
    created = Operation.objects.bulk_create(operations)
    if created and created[0].pk is None:
        # Databases without RETURNING for bulk inserts: read the ids back by their keys.
        by_key = dict(
            Operation.objects.filter(
                dedupe_key__in=[op.dedupe_key for op in operations], state=OperationState.PENDING
            ).values_list("dedupe_key", "pk")
        )
        for op in operations:
            op.pk = by_key[op.dedupe_key]
    return operations


def _describe(kind: str, count: int, product: Product | None, data_types: Sequence[str]) -> str:
    companies = f"{count:,} compan{'y' if count == 1 else 'ies'}"
    if kind == OperationKind.ADD_PRODUCT:
        return f"Add {product.name} to {companies}"
    if kind == OperationKind.REMOVE_PRODUCT:
        return f"Remove {product.name} from {companies}"
    if kind == OperationKind.REFRESH_PRODUCT:
        what = f" ({', '.join(data_types)})" if data_types else ""
        return f"Refresh {product.name}{what} for {companies}"
    if kind == OperationKind.REFRESH_ALL_DATA:
        return f"Refresh all data of {companies}"
    if kind == OperationKind.REFRESH_DATA_TYPE:
        return f"Refresh {data_types[0]} of {companies}"
    return f"{OperationKind(kind).label} for {companies}"


def operations_preview(
    *,
    kind: str,
    company_ids: Iterable[int],
    product: Product | None = None,
    data_types: Sequence[str] = (),
) -> Plan:
    """What `operations_start` would do, without writing anything (the confirmation page)."""
    _check_request(kind, product, data_types)
    plan = Plan(kind=kind)
    ids = sorted(set(company_ids))
    for start in range(0, len(ids), CHUNK):
        _plan_chunk(
            plan,
            company_ids=ids[start : start + CHUNK],
            product=product,
            data_types=data_types,
            extra="",
        )
    return plan


def operations_start(
    *,
    kind: str,
    company_ids: Iterable[int],
    product: Product | None = None,
    data_types: Sequence[str] = (),
    requested_by=None,
    as_job: bool = True,
    connection_id: str = "",
) -> tuple[Job | None, Plan]:
    """Write one row per company that needs the call, with its desired state, in one transaction.

    Companies that already have an identical live row join it; companies the call makes no
    sense for (or consent does not allow) are skipped with a reason. The rows go to Celery
    once the transaction commits.
    """
    _check_request(kind, product, data_types)
    ids = sorted(set(company_ids))
    for attempt in range(3):
        plan = Plan(kind=kind)
        try:
            with transaction.atomic():
                now = timezone.now()
                job = None
                if as_job:
                    job = Job.objects.create(
                        kind=kind,
                        product=product,
                        data_types=list(data_types),
                        description=_describe(kind, len(ids), product, data_types),
                        requested_by=requested_by,
                    )
                for start in range(0, len(ids), CHUNK):
                    chunk = ids[start : start + CHUNK]
                    before = len(plan.queued)
                    _plan_chunk(
                        plan,
                        company_ids=chunk,
                        product=product,
                        data_types=data_types,
                        extra=connection_id,
                    )
                    plan.operations += _write_chunk(
                        plan,
                        company_ids=plan.queued[before:],
                        product=product,
                        data_types=data_types,
                        extra=connection_id,
                        parameters={"connectionId": connection_id} if connection_id else {},
                        job=job,
                        requested_by=requested_by,
                        now=now,
                    )
                if job is not None and plan.joined:
                    # Rows already live for these companies become part of this job's picture.
                    Operation.objects.filter(
                        pk__in=[op.pk for op in plan.joined.values()], job__isnull=True
                    ).update(job=job)
                enqueue_on_commit([op.pk for op in plan.operations])
            return job, plan
        except IntegrityError:
            # Another request wrote a row for one of these targets at the same moment: plan
            # again, and this time join it.
            if attempt == 2:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def _one(
    kind: str,
    *,
    company: Company,
    product: Product | None = None,
    data_types: Sequence[str] = (),
    requested_by=None,
    connection_id: str = "",
) -> Operation:
    _, plan = operations_start(
        kind=kind,
        company_ids=[company.pk],
        product=product,
        data_types=data_types,
        requested_by=requested_by,
        as_job=False,
        connection_id=connection_id,
    )
    if plan.operations:
        return plan.operations[0]
    if company.pk in plan.joined:
        return plan.joined[company.pk]
    raise OperationRefused(f"{company.name}: {plan.skipped[company.pk]}.")


def product_add(*, company: Company, product: Product, requested_by=None) -> Operation:
    """Add a product to a company at Codat (PUT, idempotent); the assignment is pending_add."""
    return _one(
        OperationKind.ADD_PRODUCT, company=company, product=product, requested_by=requested_by
    )


def product_remove(*, company: Company, product: Product, requested_by=None) -> Operation:
    """Remove a product from a company at Codat; the assignment is pending_removal."""
    return _one(
        OperationKind.REMOVE_PRODUCT, company=company, product=product, requested_by=requested_by
    )


def product_refresh(
    *,
    company: Company,
    product: Product,
    data_types: Sequence[str] = (),
    requested_by=None,
) -> Operation:
    """Queue a read of a custom product's data types (all of them, or `data_types`).

    A standard product is refused with the reason: Codat does not refresh standard products.
    """
    return _one(
        OperationKind.REFRESH_PRODUCT,
        company=company,
        product=product,
        data_types=data_types,
        requested_by=requested_by,
    )


def company_refresh_all_data(*, company: Company, requested_by=None) -> Operation:
    """Queue every fetchOnFirstLink data type (client-level sync settings)."""
    return _one(OperationKind.REFRESH_ALL_DATA, company=company, requested_by=requested_by)


def company_refresh_data_type(
    *,
    company: Company,
    data_type: str,
    connection: Connection | None = None,
    requested_by=None,
) -> Operation:
    """Queue one data type (client-level sync settings), optionally for one connection."""
    return _one(
        OperationKind.REFRESH_DATA_TYPE,
        company=company,
        data_types=[data_type],
        requested_by=requested_by,
        connection_id=str(connection.codat_id) if connection else "",
    )


@transaction.atomic
def company_create(
    *,
    name: str,
    description: str = "",
    tags: dict[str, str] | None = None,
    products: Sequence[Product] = (),
    requested_by=None,
) -> Operation:
    """Create a company at Codat with its products; the mirror follows Codat's answer."""
    if not name.strip():
        raise OperationRefused("A company needs a name.")
    tags = dict(tags or {})
    if len(tags) >= 10:
        raise OperationRefused("Codat allows at most 10 tags, and the portal needs one of them.")
    idempotency_key = uuid.uuid4()
    now = timezone.now()
    operation = Operation.objects.create(
        kind=OperationKind.CREATE_COMPANY,
        parameters={
            "name": name,
            "description": description,
            "tags": tags,
            "products": [product.identifier for product in products],
        },
        next_attempt_at=now,
        enqueued_at=now,
        dedupe_key=f"create_company:{idempotency_key}",
        idempotency_key=idempotency_key,
        requested_by=requested_by,
    )
    enqueue_on_commit([operation.pk])
    return operation


# -- jobs -------------------------------------------------------------------------------------


@transaction.atomic
def job_cancel_rest(*, job: Job) -> int:
    """Cancel the job's rows that have not started; rows being attempted finish normally."""
    now = timezone.now()
    pending = Operation.objects.select_for_update().filter(job=job, state=OperationState.PENDING)
    company_ids = list(pending.values_list("company_id", flat=True))
    cancelled = pending.update(
        state=OperationState.CANCELLED, finished_at=now, last_error="cancelled by staff"
    )
    # The desired state goes back to what Codat has: an add that never ran leaves nothing, a
    # removal that never ran leaves the product. The reconciler corrects any surprise.
    assignments = CompanyProduct.objects.filter(company_id__in=company_ids, product=job.product)
    if job.kind == OperationKind.ADD_PRODUCT:
        assignments.filter(status=CompanyProductStatus.PENDING_ADD).update(
            status=CompanyProductStatus.REMOVED, status_changed_at=now
        )
    elif job.kind == OperationKind.REMOVE_PRODUCT:
        assignments.filter(status=CompanyProductStatus.PENDING_REMOVAL).update(
            status=CompanyProductStatus.ACTIVE, status_changed_at=now
        )
    if job.cancelled_at is None:
        job.cancelled_at = now
        job.save(update_fields=["cancelled_at"])
    return cancelled


def job_retry_failed(*, job: Job, requested_by=None) -> int:
    """Try the job's failed rows again (same rows, fresh retry budget, desired state restored)."""
    with transaction.atomic():
        failed = list(Operation.objects.filter(job=job, state=OperationState.FAILED))
        live = set(
            Operation.objects.filter(
                dedupe_key__in=[op.dedupe_key for op in failed], state__in=ACTIVE_STATES
            ).values_list("dedupe_key", flat=True)
        )
        chosen: dict[str, Operation] = {}
        for op in failed:
            if op.dedupe_key not in live:
                chosen.setdefault(op.dedupe_key, op)
        retry = list(chosen.values())
        if job.kind in (OperationKind.ADD_PRODUCT, OperationKind.REFRESH_PRODUCT):
            refused = consent_selectors.companies_refused_for_consent(
                company_ids=[op.company_id for op in retry],
                product=job.product,
                data_types=job.data_types or None,
            )
            retry = [op for op in retry if op.company_id not in refused]
        if not retry:
            return 0
        now = timezone.now()
        ids = [op.pk for op in retry]
        Operation.objects.filter(pk__in=ids, state=OperationState.FAILED).update(
            state=OperationState.PENDING,
            next_attempt_at=now,
            enqueued_at=now,
            transient_failures=0,
            finished_at=None,
        )
        company_ids = [op.company_id for op in retry]
        if job.kind == OperationKind.ADD_PRODUCT:
            CompanyProduct.objects.filter(company_id__in=company_ids, product=job.product).exclude(
                status=CompanyProductStatus.ACTIVE
            ).update(status=CompanyProductStatus.PENDING_ADD, status_changed_at=now)
        elif job.kind == OperationKind.REMOVE_PRODUCT:
            CompanyProduct.objects.filter(
                company_id__in=company_ids, product=job.product, status=CompanyProductStatus.ACTIVE
            ).update(status=CompanyProductStatus.PENDING_REMOVAL, status_changed_at=now)
        if job.cancelled_at is not None:
            job.cancelled_at = None
            job.save(update_fields=["cancelled_at"])
        enqueue_on_commit(ids)
    return len(ids)


# -- handing ids to Celery --------------------------------------------------------------------


def enqueue_on_commit(operation_ids: list[int]) -> None:
    if operation_ids:
        transaction.on_commit(lambda: enqueue(operation_ids))


def enqueue(operation_ids: Sequence[int], *, countdown: float | None = None) -> int:
    """Send ids to the workers. Losing them is harmless: the sweeper re-sends due rows."""
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


# -- the worker side --------------------------------------------------------------------------


def _backoff_seconds(failures: int) -> float:
    base = settings.CODAT_OPERATIONS_RETRY_BASE_SECONDS
    cap = settings.CODAT_OPERATIONS_RETRY_MAX_SECONDS
    delay = min(cap, base * 2 ** max(0, failures - 1))
    # Jitter spreads the retries of a fleet that failed together (a Codat outage).
    return delay * random.uniform(0.5, 1.5)


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
        enqueue([operation_id], countdown=max(0.0, wait))
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


def operation_run(*, operation_id: int) -> str:
    """Attempt one row, once. Returns what happened, for logs and tests."""
    now = timezone.now()
    # The opposite change of the same product (an add while a removal runs) is read in the
    # same query: each round trip counts when the fleet runs at Codat's ceiling.
    opposite_running = Exists(
        Operation.objects.filter(
            company_id=OuterRef("company_id"),
            product_id=OuterRef("product_id"),
            kind__in=tuple(OPPOSITE),
            state=OperationState.RUNNING,
        ).exclude(kind=OuterRef("kind"))
    )
    operation = (
        Operation.objects.select_related("company", "product")
        .annotate(opposite_running=opposite_running)
        .filter(pk=operation_id, state=OperationState.PENDING, next_attempt_at__lte=now)
        .first()
    )
    if operation is None:
        return "not-due"  # done, claimed elsewhere, cancelled, or a duplicate message
    refusal = _refresh_refused_for_consent(operation)
    if refusal:
        # Consent can end after the row was written (withdrawn, or lapsed under the
        # reconfirmation policy): a read starts only with consent at the moment of the call.
        Operation.objects.filter(pk=operation_id, state=OperationState.PENDING).update(
            state=OperationState.CANCELLED, finished_at=now, last_error=f"consent: {refusal}"
        )
        return "cancelled"
    if operation.kind in OPPOSITE and operation.opposite_running:
        _park(
            operation_id,
            until=now + timedelta(seconds=ORDERING_WAIT_SECONDS),
            reason="opposite change running",
        )
        return "waiting"
    company_codat_id = str(operation.company.codat_id) if operation.company else None
    permit = limiter.acquire(company_id=company_codat_id)
    if not permit.granted:
        # Paused (429, quota spent) or over budget: the row waits in PostgreSQL, unclaimed.
        _park(operation_id, until=permit.resume_at + _spread(permit.wait), reason=permit.reason)
        return "paused" if permit.reason == "paused" else f"limited:{permit.reason}"
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
            return "not-claimed"
        operation.attempts += 1
        if permit.delay:
            time.sleep(permit.delay)
            # The pause may have begun while this worker waited for its slot.
            paused_until = limiter.codat_calls_paused_until()
            if paused_until is not None:
                _unclaim(operation, token, until=paused_until + _spread())
                return "paused"
        return _attempt(operation, token)
    finally:
        limiter.release(permit)


def _refresh_refused_for_consent(operation: Operation) -> str:
    """Why consent no longer allows this refresh ("" if it does). Adds are not asked here: a
    withdrawal writes the removal, which cancels a pending add of the same product."""
    if operation.kind not in (
        OperationKind.REFRESH_PRODUCT,
        OperationKind.REFRESH_ALL_DATA,
        OperationKind.REFRESH_DATA_TYPE,
    ):
        return ""
    refused = consent_selectors.companies_refused_for_consent(
        company_ids=[operation.company_id],
        product=operation.product if operation.kind == OperationKind.REFRESH_PRODUCT else None,
        data_types=operation.data_types or None,
    )
    return refused.get(operation.company_id, "")


def _spread(wait: float = 1.0) -> timedelta:
    return timedelta(seconds=random.uniform(0, min(2.0, max(0.05, wait * 0.1))))


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


def _attempt(operation: Operation, token: uuid.UUID) -> str:
    client = codat_client()
    try:
        result = _call_codat(client, operation)
    except codat_errors.CodatRateLimited as error:
        until = limiter.pause_for(error)
        _reschedule(operation, token, error=error, until=until + _spread(), transient=False)
        return "rate-limited"
    except codat_errors.CodatReadInProgress as error:
        limiter.observe(error.rate_limit)
        _finish(operation, token, state=OperationState.JOINED, error=error)
        return "joined"
    except codat_errors.CodatNotFound as error:
        limiter.observe(error.rate_limit)
        if operation.kind == OperationKind.REMOVE_PRODUCT:
            # The product (or the company) is not at Codat: what the removal wanted.
            _finish(operation, token, state=OperationState.SUCCEEDED, result={"absent": True})
            return "succeeded"
        _finish(operation, token, state=OperationState.FAILED, error=error)
        return "failed"
    except codat_errors.CodatError as error:
        limiter.observe(error.rate_limit)
        if error.is_transient:
            failures = operation.transient_failures + 1
            if failures >= settings.CODAT_OPERATIONS_MAX_ATTEMPTS:
                _finish(operation, token, state=OperationState.FAILED, error=error, gave_up=True)
                return "failed"
            until = timezone.now() + timedelta(seconds=_backoff_seconds(failures))
            _reschedule(operation, token, error=error, until=until, transient=True)
            return "retrying"
        _finish(operation, token, state=OperationState.FAILED, error=error)
        return "failed"
    limiter.observe(client.last_rate_limit)
    _finish(operation, token, state=OperationState.SUCCEEDED, result=result or {})
    return "succeeded"


def _call_codat(client: CodatClient, operation: Operation) -> dict | None:
    company_id = str(operation.company.codat_id) if operation.company else None
    kind = operation.kind
    if kind == OperationKind.ADD_PRODUCT:
        client.add_product(company_id, operation.product.identifier)
        return None
    if kind == OperationKind.REMOVE_PRODUCT:
        client.remove_product(company_id, operation.product.identifier)
        return None
    if kind == OperationKind.REFRESH_PRODUCT:
        client.refresh_product_data(
            company_id, operation.product.identifier, data_types=operation.data_types or None
        )
        return None
    if kind == OperationKind.REFRESH_ALL_DATA:
        client.refresh_all_data(company_id)
        return None
    if kind == OperationKind.REFRESH_DATA_TYPE:
        return client.refresh_data_type(
            company_id,
            operation.data_types[0],
            connection_id=operation.parameters.get("connectionId") or None,
        )
    if kind == OperationKind.CREATE_COMPANY:
        key = str(operation.idempotency_key)
        if operation.attempts > 1:
            # An earlier attempt may have created the company before its answer was lost.
            for company in client.iter_companies(tags=f"{IDEMPOTENCY_TAG}={key}"):
                return company
        params = operation.parameters
        return client.create_company(
            params["name"],
            description=params.get("description") or None,
            tags={**params.get("tags", {}), IDEMPOTENCY_TAG: key},
            products=params.get("products") or None,
        )
    raise ValueError(f"unknown operation kind {kind!r}")


def _error_fields(error: codat_errors.CodatError | None, *, gave_up: bool = False) -> dict:
    if error is None:
        return {"last_error": "", "last_error_status": None, "last_error_correlation_id": ""}
    text = error.error or str(error)
    if gave_up:
        text = f"gave up after {settings.CODAT_OPERATIONS_MAX_ATTEMPTS} transient failures: {text}"
    return {
        "last_error": text[:5000],
        "last_error_status": error.http_status,
        "last_error_correlation_id": (error.correlation_id or "")[:100],
    }


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


@transaction.atomic
def _finish(
    operation: Operation,
    token: uuid.UUID,
    *,
    state: str,
    error: codat_errors.CodatError | None = None,
    result: dict | None = None,
    gave_up: bool = False,
) -> None:
    now = timezone.now()
    fields = {"state": state, "finished_at": now, "claim_token": None, **_error_fields(error)}
    if state == OperationState.SUCCEEDED and operation.kind == OperationKind.CREATE_COMPANY:
        from companies.services import company_mirror_from_codat

        company = company_mirror_from_codat(data=result)
        fields["company"] = company
        result = {"companyId": result["id"]}
    elif state == OperationState.SUCCEEDED and operation.kind == OperationKind.REFRESH_DATA_TYPE:
        from companies.services import pull_operation_mirror_from_codat

        pull = pull_operation_mirror_from_codat(company=operation.company, data=result)
        result = {"datasetId": str(pull.codat_id)}
    fields["result"] = result or {}
    # Only the claim this worker holds may be finished: if the sweeper presumed this worker
    # dead and another took over, the other's outcome stands.
    if not Operation.objects.filter(pk=operation.pk, claim_token=token).update(**fields):
        logger.warning("operations.claim_lost", extra={"operation": operation.pk})
        return
    _apply_to_assignment(operation, state=state, now=now)


def _apply_to_assignment(operation: Operation, *, state: str, now: datetime) -> None:
    """The desired state follows the outcome, unless a later wish has replaced it."""
    assignments = CompanyProduct.objects.filter(
        company_id=operation.company_id, product_id=operation.product_id
    )
    if operation.kind == OperationKind.ADD_PRODUCT:
        outcome = (
            CompanyProductStatus.ACTIVE
            if state == OperationState.SUCCEEDED
            else CompanyProductStatus.FAILED
        )
        assignments.filter(status=CompanyProductStatus.PENDING_ADD).update(
            status=outcome, status_changed_at=now
        )
    elif operation.kind == OperationKind.REMOVE_PRODUCT:
        # A failed removal leaves the product where it was: active.
        outcome = (
            CompanyProductStatus.REMOVED
            if state == OperationState.SUCCEEDED
            else CompanyProductStatus.ACTIVE
        )
        assignments.filter(status=CompanyProductStatus.PENDING_REMOVAL).update(
            status=outcome, status_changed_at=now
        )


# -- the sweeper (beat) -----------------------------------------------------------------------


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
        enqueue(ids)
    _refresh_daily_quota_estimate()
    if freed or ids or given_up:
        logger.info(
            "operations.swept", extra={"freed": freed, "resent": len(ids), "given_up": given_up}
        )
    return {"freed": freed, "resent": len(ids), "given_up": given_up}


def _fail_rows_that_keep_killing_workers(stuck, *, now: datetime) -> int:
    """Fail the stuck rows whose worker has died or hung on them too often; how many."""
    limit = settings.CODAT_OPERATIONS_MAX_ABANDONED_CLAIMS
    given_up = 0
    # Rare (a row that crashes its worker), so one row at a time, each with its assignment.
    for operation in stuck.filter(abandoned_claims__gte=limit - 1):
        with transaction.atomic():
            failed = Operation.objects.filter(
                pk=operation.pk, state=OperationState.RUNNING, claim_token=operation.claim_token
            ).update(
                state=OperationState.FAILED,
                finished_at=now,
                claim_token=None,
                abandoned_claims=F("abandoned_claims") + 1,
                last_error=(
                    f"gave up: the worker running this row died or hung {limit} times "
                    "(see the worker's log for the crash)"
                ),
                last_error_status=None,
                last_error_correlation_id="",
            )
            if failed:
                _apply_to_assignment(operation, state=OperationState.FAILED, now=now)
                given_up += 1
    if given_up:
        logger.error("operations.given_up_on_worker_crashes", extra={"count": given_up})
    return given_up


def _refresh_daily_quota_estimate() -> None:
    linked = Company.objects.filter(connections__status=ConnectionStatus.LINKED).distinct().count()
    try:
        limiter.set_daily_quota_estimate(1000 * (1 + linked))
    except Exception:
        logger.exception("operations.quota_estimate_failed")


# -- import and reconcile the mirror ------------------------------------------------------------


def companies_import_from_codat(*, page_size: int = 500) -> int:
    """Mirror every company Codat has (with its products and connections). Returns the count."""
    from companies.services import company_mirror_from_codat

    client = codat_client()
    count = 0
    page = 1
    while True:
        with limiter.slot(company_id=None):
            body = client.list_companies(page=page, page_size=page_size)
        limiter.observe(client.last_rate_limit)
        for data in body.get("results") or ():
            company_mirror_from_codat(data=data)
            count += 1
        if not (body.get("_links") or {}).get("next"):
            return count
        page += 1


def company_reconcile(*, company: Company, history_pages: int = 1) -> None:
    """Mirror one company's connections, data status and recent pull history from Codat."""
    from companies.services import (
        connection_mirror_from_codat,
        data_status_mirror_from_codat,
        pull_operation_mirror_from_codat,
    )

    client = codat_client()
    codat_id = str(company.codat_id)
    with limiter.slot(company_id=codat_id):
        connections = client.list_connections(codat_id, page_size=100)
    for data in connections.get("results") or ():
        connection_mirror_from_codat(company=company, data=data)
    with limiter.slot(company_id=codat_id):
        statuses = client.get_data_status(codat_id)
    data_status_mirror_from_codat(company=company, data_statuses=statuses)
    for page in range(1, history_pages + 1):
        with limiter.slot(company_id=codat_id):
            history = client.list_pull_operations(
                codat_id, page=page, page_size=100, order_by="-requested"
            )
        for data in history.get("results") or ():
            pull_operation_mirror_from_codat(company=company, data=data)
        if not (history.get("_links") or {}).get("next"):
            break
    limiter.observe(client.last_rate_limit)


def companies_import_with_details_from_codat() -> int:
    """Mirror every company at Codat, then each one's connections, data status and history.

    For a first import (a new deployment, the demo); afterwards the reconciler keeps it fresh.
    """
    imported = companies_import_from_codat()
    for company in Company.objects.filter(codat_deleted_at__isnull=True):
        company_reconcile(company=company)
    return imported


def mirror_reconcile(*, companies_per_run: int = 200) -> dict[str, int]:
    """Heal the mirror from Codat (a missed webhook): all companies and their products, then
    connections, data status and history for the companies mirrored longest ago."""
    imported = companies_import_from_codat()
    from operations.tasks import QUEUE, reconcile_company_task

    # Companies whose data status was mirrored longest ago (or never) go first.
    stalest = list(
        Company.objects.annotate(status_mirrored=Max("data_type_statuses__mirrored_at"))
        .order_by(F("status_mirrored").asc(nulls_first=True), "id")
        .values_list("pk", flat=True)[:companies_per_run]
    )
    for company_id in stalest:
        reconcile_company_task.apply_async((company_id,), queue=QUEUE)
    return {"imported": imported, "companies_queued": len(stalest)}
