"""Which companies of a request get a row, which join a live one, and which are left out and why.

`operations_preview` answers it without writing (the confirmation page); the services in
operations/services.py plan and write in one transaction. Everything that differs by kind comes
from its spec (operations/kinds.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from consent import selectors as consent_selectors
from operations.kinds import Consent, OperationSpec, spec_for
from operations.models import ACTIVE_STATES, Job, Operation, OperationState
from products.models import CompanyProduct, Product

# Companies planned per round of queries: bounds each IN (...) list and each bulk insert.
CHUNK = 500


class OperationRefused(Exception):
    """The request cannot be turned into a Codat call; the message says why, for people."""


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


def checked_spec(kind: str, product: Product | None, data_types: Sequence[str]) -> OperationSpec:
    """The kind's spec, once the request makes sense for it; OperationRefused says why not."""
    spec = spec_for(kind)
    if not spec.on_companies:
        raise OperationRefused(f"{spec.kind.label} is not an action on selected companies.")
    refusal = spec.check_request(product, data_types)
    if refusal:
        raise OperationRefused(refusal)
    return spec


def companies_refused_for_consent(
    spec: OperationSpec,
    *,
    company_ids: Iterable[int],
    product: Product | None,
    data_types: Sequence[str],
) -> dict[int, str]:
    """The companies whose recorded consent does not allow this kind's call, with the reason."""
    if spec.consent is Consent.NONE:
        return {}
    return consent_selectors.companies_refused_for_consent(
        company_ids=company_ids,
        product=product if spec.consent is Consent.PRODUCT else None,
        data_types=data_types or None,
    )


def plan_chunk(
    plan: Plan,
    spec: OperationSpec,
    *,
    company_ids: list[int],
    product: Product | None,
    data_types: Sequence[str],
    extra: str,
) -> None:
    keys = {
        company_id: dedupe_key(
            kind=spec.kind,
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
    refused = companies_refused_for_consent(
        spec, company_ids=company_ids, product=product, data_types=data_types
    )
    statuses = {}
    if spec.assignment is not None:
        statuses = dict(
            CompanyProduct.objects.filter(company_id__in=company_ids, product=product).values_list(
                "company_id", "status"
            )
        )
    for company_id in company_ids:
        existing = live.get(keys[company_id])
        if existing is not None:
            plan.joined[company_id] = existing
            continue
        if company_id in refused:
            plan.skipped[company_id] = refused[company_id]
            continue
        if spec.assignment is not None and spec.assignment.skip(statuses.get(company_id)):
            plan.skipped[company_id] = spec.assignment.skip_reason.format(product=product.name)
            continue
        plan.queued.append(company_id)


def write_chunk(
    plan: Plan,
    spec: OperationSpec,
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
    if not company_ids:
        return []
    if spec.opposite:
        # The newest wish wins: a pending opposite change of the same product is cancelled. A
        # running one is left to finish; the new row waits for it (see operations/worker.py).
        opposite_keys = [
            dedupe_key(kind=spec.opposite, company_id=company_id, product_id=product.pk)
            for company_id in company_ids
        ]
        Operation.objects.filter(dedupe_key__in=opposite_keys, state=OperationState.PENDING).update(
            state=OperationState.CANCELLED,
            finished_at=now,
            last_error=f"superseded by a later {spec.kind.label.lower()}",
        )
    if spec.assignment is not None and spec.assignment.written:
        desired = spec.assignment.written
        assignments = CompanyProduct.objects.filter(company_id__in=company_ids, product=product)
        existing = set(assignments.values_list("company_id", flat=True))
        assignments.update(status=desired, status_changed_at=now)
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
            kind=spec.kind,
            company_id=company_id,
            product=product,
            data_types=list(data_types),
            parameters=parameters,
            state=OperationState.PENDING,
            next_attempt_at=now,
            enqueued_at=now,
            dedupe_key=dedupe_key(
                kind=spec.kind,
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


def operations_preview(
    *,
    kind: str,
    company_ids: Iterable[int],
    product: Product | None = None,
    data_types: Sequence[str] = (),
) -> Plan:
    """What `operations_start` would do, without writing anything (the confirmation page)."""
    spec = checked_spec(kind, product, data_types)
    plan = Plan(kind=kind)
    ids = sorted(set(company_ids))
    for start in range(0, len(ids), CHUNK):
        plan_chunk(
            plan,
            spec,
            company_ids=ids[start : start + CHUNK],
            product=product,
            data_types=data_types,
            extra="",
        )
    return plan
