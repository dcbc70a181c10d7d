"""The one way to change anything at Codat: the admin, the API, consent and webhooks call these.

Each service writes the desired state and one Operation row per Codat call in one transaction,
and hands the ids to Celery only after the commit (operations/queue.py). What differs by kind
is in operations/kinds.py; which companies get a row is operations/planning.py; the worker's
side is operations/worker.py, the sweeper's operations/sweeper.py.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import audit_record
from companies.models import Company, Connection
from companies.services import product_reads_follow
from operations.kinds import SPECS, spec_for
from operations.models import ACTIVE_STATES, Job, Operation, OperationKind, OperationState
from operations.planning import (
    CHUNK,
    OperationRefused,
    Plan,
    checked_spec,
    companies_refused_for_consent,
    operations_preview,
    plan_chunk,
    write_chunk,
)
from operations.queue import enqueue_on_commit
from products.models import CompanyProduct, Product

__all__ = [
    "OperationRefused",
    "Plan",
    "company_create",
    "company_refresh_all_data",
    "company_refresh_data_type",
    "job_cancel_rest",
    "job_retry_failed",
    "operation_write",
    "operations_preview",
    "operations_start",
    "product_add",
    "product_refresh",
    "product_remove",
]


def operations_start(
    *,
    kind: str,
    company_ids: Iterable[int],
    product: Product | None = None,
    data_types: Sequence[str] = (),
    requested_by=None,
    as_job: bool = True,
    connection_id: str = "",
    parameters: dict | None = None,
) -> tuple[Job | None, Plan]:
    """Write one row per company that needs the call, with its desired state, in one transaction.

    Companies that already have an identical live row join it; companies the call makes no
    sense for (or consent does not allow) are skipped with a reason. The rows go to Celery
    once the transaction commits.

    `parameters` go on every row (e.g. an admin's written override of the dual-sync guard,
    syncsettings/guard.py), and into the audit entry.
    """
    spec = checked_spec(kind, product, data_types)
    row_parameters = dict(parameters or {})
    if connection_id:
        row_parameters["connectionId"] = connection_id
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
                        requested_by=requested_by,
                    )
                for start in range(0, len(ids), CHUNK):
                    chunk = ids[start : start + CHUNK]
                    before = len(plan.queued)
                    plan_chunk(
                        plan,
                        spec,
                        company_ids=chunk,
                        product=product,
                        data_types=data_types,
                        extra=connection_id,
                        parameters=row_parameters,
                    )
                    plan.operations += write_chunk(
                        plan,
                        spec,
                        company_ids=plan.queued[before:],
                        product=product,
                        data_types=data_types,
                        extra=connection_id,
                        parameters=row_parameters,
                        job=job,
                        requested_by=requested_by,
                        now=now,
                    )
                if job is not None and plan.joined:
                    # Rows already live for these companies become part of this job's picture.
                    Operation.objects.filter(
                        pk__in=[op.pk for op in plan.joined.values()], job__isnull=True
                    ).update(job=job)
                if job is not None:
                    # The job is about the companies it acts on, not the whole selection: the
                    # skipped ones are counted apart on its page.
                    job.description = spec.description(
                        len(plan.queued) + len(plan.joined), product, data_types
                    )
                    job.save(update_fields=["description"])
                _audit_start(kind, job, plan, product, data_types, requested_by, parameters)
                enqueue_on_commit([op.pk for op in plan.operations])
            return job, plan
        except IntegrityError:
            # Another request wrote a row for one of these targets at the same moment: plan
            # again, and this time join it.
            if attempt == 2:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def _audit_start(kind, job, plan, product, data_types, requested_by, parameters) -> None:
    audit_record(
        action="operations.start",
        actor=requested_by,
        target=job,
        target_type="operations.job" if job is not None else "companies.company",
        target_id="" if job is not None else ",".join(str(pk) for pk in plan.queued[:20]),
        target_label="" if job is not None else f"{kind} for {len(plan.queued)} company(ies)",
        changes={
            "kind": kind,
            "product": product.identifier if product is not None else "",
            "data_types": list(data_types),
            "queued": len(plan.queued),
            "joined": len(plan.joined),
            "skipped": len(plan.skipped),
            # The companies acted on, by the portal's id; a long list is cut, the job has it all.
            "company_ids": sorted(plan.queued + list(plan.joined))[:500],
            # What the request asked beyond the kind (an admin's written override reason).
            **({"parameters": parameters} if parameters else {}),
        },
        people_only=True,
    )


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


def operation_write(
    *,
    kind: str,
    dedupe_key: str,
    parameters: dict | None = None,
    requested_by=None,
    **target,
) -> Operation:
    """Write one row of a kind that acts on no selection of companies (a new company, a webhook
    consumer, the account), or join the live row with the same `dedupe_key`. Call it inside the
    transaction that writes the desired state; the row is sent to the workers on commit."""
    spec_for(kind)  # an unknown kind fails here, not in a worker
    live = Operation.objects.filter(dedupe_key=dedupe_key, state__in=ACTIVE_STATES).first()
    if live is not None:
        return live
    now = timezone.now()
    operation = Operation.objects.create(
        kind=kind,
        parameters=parameters or {},
        next_attempt_at=now,
        enqueued_at=now,
        dedupe_key=dedupe_key,
        requested_by=requested_by,
        **target,
    )
    audit_record(
        action="operations.write",
        actor=requested_by,
        target=operation,
        changes={"kind": kind, "parameters": parameters or {}},
        people_only=True,
    )
    enqueue_on_commit([operation.pk])
    return operation


@transaction.atomic
def company_create(
    *,
    name: str,
    description: str = "",
    tags: dict[str, str] | None = None,
    products: Sequence[Product] = (),
    products_awaiting_consent: Sequence[Product] = (),
    requested_by=None,
) -> Operation:
    """Create a company at Codat with its products; the mirror follows Codat's answer.

    `products` go to Codat with the company: only for a caller that holds consent for them
    some other way (the company is new, so the portal has none on record). The API passes
    `products_awaiting_consent` instead: once Codat has created the company, each gets a
    consent request, and its add goes ahead when the company grants (consent/effects.py).
    """
    if not name.strip():
        raise OperationRefused("A company needs a name.")
    tags = dict(tags or {})
    if len(tags) >= 10:
        raise OperationRefused("Codat allows at most 10 tags, and the portal needs one of them.")
    idempotency_key = uuid.uuid4()
    return operation_write(
        kind=OperationKind.CREATE_COMPANY,
        dedupe_key=f"create_company:{idempotency_key}",
        parameters={
            "name": name,
            "description": description,
            "tags": tags,
            "products": [product.identifier for product in products],
            "awaiting_consent": [product.identifier for product in products_awaiting_consent],
        },
        requested_by=requested_by,
        idempotency_key=idempotency_key,
    )


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
    # The desired state goes back to what Codat has: a change that never ran changed nothing.
    assignment = SPECS[job.kind].assignment
    if assignment is not None and assignment.written and assignment.cancelled:
        assignments = CompanyProduct.objects.filter(company_id__in=company_ids, product=job.product)
        assignments.filter(status=assignment.written).update(
            status=assignment.cancelled, status_changed_at=now
        )
        product_reads_follow(assignments)
    if job.cancelled_at is None:
        job.cancelled_at = now
        job.save(update_fields=["cancelled_at"])
    audit_record(action="operations.cancel_rest", target=job, changes={"cancelled": cancelled})
    return cancelled


def job_retry_failed(*, job: Job, requested_by=None) -> int:
    """Try the job's failed rows again (same rows, fresh retry budget, desired state restored)."""
    spec = SPECS[job.kind]
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
        refused = companies_refused_for_consent(
            spec,
            company_ids=[op.company_id for op in retry],
            product=job.product,
            data_types=job.data_types,
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
        assignment = spec.assignment
        if assignment is not None and assignment.written:
            CompanyProduct.objects.filter(
                company_id__in=[op.company_id for op in retry],
                product=job.product,
                status__in=assignment.retry_from,
            ).update(status=assignment.written, status_changed_at=now)
        if job.cancelled_at is not None:
            job.cancelled_at = None
            job.save(update_fields=["cancelled_at"])
        audit_record(
            action="operations.retry_failed",
            actor=requested_by,
            target=job,
            changes={"retried": len(ids), "operation_ids": ids[:500]},
        )
        enqueue_on_commit(ids)
    return len(ids)
