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
    if not spec.on_companies or not spec.offered_in_bulk:
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
    parameters: dict | None = None,
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
    guarded = spec.guard(company_ids, product, parameters or {}) if spec.guard else {}
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
        if company_id in guarded:
            plan.skipped[company_id] = guarded[company_id]
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
    parameters: dict | None = None,
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
            parameters=parameters,
        )
    return plan


# -- the preview of a selection of any size ----------------------------------------------------

# How many left-out companies the preview names (the confirmation page; the CSV has them all).
LEFT_OUT_SHOWN = 50


@dataclass
class PlanSummary:
    """What a request over a selection will do, in numbers: the confirmation page's review.

    `operations_preview` answers company by company and reads every company into Python; this
    answers with a few queries whose cost grows with the database, not with Python loops, so
    the page costs the same for 10 companies or 100,000.
    """

    kind: str
    queued: int = 0
    joined: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    # Left out for lack of consent, where the kind can wait for it (a consent request helps).
    awaiting_consent: int = 0
    # The first LEFT_OUT_SHOWN left out, by pk: (company, reason).
    left_out: list[tuple[object, str]] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return sum(self.skipped_reasons.values())

    @property
    def selected(self) -> int:
        return self.queued + self.joined + self.skipped


# One row per group of companies the plan treats alike: whether an identical row is live, the
# assignment's status, the consent that decides, how many companies and the first of them.
_SUMMARY_SQL = """
WITH selected (id) AS ({selected}),
live AS (
    -- An identical live row: its dedupe key is the one plan_chunk computes for its company.
    SELECT DISTINCT company_id FROM operations_operation
    WHERE state IN ('pending', 'running') AND kind = %(kind)s
        AND dedupe_key = left(%(key_prefix)s || company_id || %(key_suffix)s, 200)
),
consent AS ({consent}),
grouped AS (
    SELECT
        s.id,
        live.company_id IS NOT NULL AS is_live,
        {assignment} AS assignment,
        {guard} AS guard,
        {consent_columns}
    FROM selected s
    LEFT JOIN live ON live.company_id = s.id
    {joins}
)
SELECT is_live, assignment, consent_state, consent_covered, guard, count(*),
    (array_agg(id ORDER BY id))[1:%(shown)s]
FROM grouped
GROUP BY is_live, assignment, consent_state, consent_covered, guard
"""

# Consent enters the summary as which of the data types that matter (`needed`: the product's
# required ones and those asked for) it covers, a short array of booleans, so that companies
# whose consent differs only in other data types fall into one group.
# The flags are computed for the companies that have consent rows only, not per company.
_CONSENT_OF_PRODUCT = {
    "columns": "cs.state AS consent_state, cs.covered AS consent_covered",
    "covered_of": "data_types",
    "join": (
        "LEFT JOIN (SELECT company_id, state, {covered} AS covered FROM consent) cs"
        " ON cs.company_id = s.id"
    ),
}
# Client-level reads: whether the company has any active consent, and which of the data types
# asked for some active consent of it covers.
_CONSENT_OF_CLIENT = {
    "columns": "cs.company_id IS NOT NULL AS consent_state, cs.covered AS consent_covered",
    "covered_of": "data_types",
    "join": (
        "LEFT JOIN (SELECT company_id, {covered} AS covered FROM consent"
        " WHERE state = 'active' GROUP BY company_id) cs ON cs.company_id = s.id"
    ),
    "aggregate": True,
}
_NO_CONSENT = {
    "columns": "NULL::text AS consent_state, NULL::boolean[] AS consent_covered",
    "join": "",
}


def _covered_sql(of: str, needed: Sequence[str], params: dict, *, aggregate: bool) -> str:
    """SQL of a boolean array: for each of `needed`, whether the JSON list `of` holds it (any
    of the group's lists, with `aggregate`)."""
    items = []
    for index, data_type in enumerate(needed):
        params[f"needed_{index}"] = data_type
        test = f"{of} ? %(needed_{index})s"
        items.append(f"bool_or({test})" if aggregate else test)
    return f"ARRAY[{', '.join(items)}]::boolean[]" if items else "'{}'::boolean[]"


# The summary reads every company of the selection once: a few hundred thousand rows to join
# and group, in memory rather than spilled to disk (the default work_mem is 4 MB), and without
# the JIT compilation whose cost PostgreSQL estimates from such row counts (seconds of it).
_SUMMARY_SETTINGS = "SET LOCAL work_mem = '64MB'; SET LOCAL jit = off"


def operations_preview_summary(
    *,
    kind: str,
    companies,
    product: Product | None = None,
    data_types: Sequence[str] = (),
    parameters: dict | None = None,
) -> PlanSummary:
    """What `operations_start` would do to the companies of the queryset `companies`, counted
    in SQL (PostgreSQL) with the same precedence as `plan_chunk`: an identical live row is
    joined; then consent; then the assignment's status. Five queries whatever the selection."""
    from django.db import connection, transaction

    from companies.models import Company

    spec = checked_spec(kind, product, data_types)
    if connection.vendor != "postgresql":
        return _summary_of_plan(
            operations_preview(
                kind=kind,
                company_ids=companies.values_list("pk", flat=True),
                product=product,
                data_types=data_types,
                parameters=parameters,
            ),
            product=product,
            data_types=data_types,
        )
    selected_sql, selected_params = companies.order_by().values("pk").query.sql_with_params()
    # The selection's own placeholders are positional: name them, so one dict holds them all.
    names = [f"selection_{i}" for i in range(len(selected_params))]
    selected_sql = selected_sql % tuple(f"%({name})s" for name in names)
    params = dict(zip(names, selected_params, strict=True))
    consent_product = product if spec.consent is Consent.PRODUCT else None
    if spec.consent is Consent.NONE:
        consent_sql, consent_params, consent = "SELECT 1", {}, _NO_CONSENT
    else:
        consent_sql, consent_params = consent_selectors.current_consent_sql(product=consent_product)
        consent = _CONSENT_OF_PRODUCT if consent_product is not None else _CONSENT_OF_CLIENT
    asked = frozenset(data_types)
    required = (
        consent_selectors.required_data_types(consent_product) if consent_product else frozenset()
    )
    needed = sorted(required | asked)
    if consent is not _NO_CONSENT:
        covered = _covered_sql(
            consent["covered_of"], needed, params, aggregate=consent.get("aggregate", False)
        )
        consent = {
            key: value.replace("{covered}", covered)
            for key, value in consent.items()
            if isinstance(value, str)
        }
    joins = [consent["join"]]
    assignment = "NULL::text"
    if spec.assignment is not None:
        assignment = "cp.status"
        joins.append(
            "LEFT JOIN products_companyproduct cp"
            " ON cp.company_id = s.id AND cp.product_id = %(product)s"
        )
        params["product"] = product.pk
    # dedupe_key() with the company's id in the middle, as plan_chunk computes it per company.
    marker = "\x00company\x00"
    key = dedupe_key(
        kind=spec.kind,
        company_id=marker,
        product_id=product.pk if product else None,
        data_types=data_types,
    )
    key_prefix, key_suffix = key.split(marker) if marker in key else (key, "")
    params.update(
        consent_params,
        kind=spec.kind,
        key_prefix=key_prefix,
        key_suffix=key_suffix,
        shown=LEFT_OUT_SHOWN,
    )
    # The kind's guard (a dual-sync risk, a refresh that does not fit the company's mode): the
    # index of the first of its filters the company meets, as plan_chunk asks it after consent
    # and the assignment.
    guarded = spec.guard_groups(product, parameters or {}) if spec.guard_groups else []
    guard_cases = []
    for index, (condition, _reason) in enumerate(guarded):
        guard_sql, guard_params = (
            Company.objects.filter(condition).order_by().values("pk").query.sql_with_params()
        )
        names = [f"guard_{index}_{i}" for i in range(len(guard_params))]
        guard_sql = guard_sql % tuple(f"%({name})s" for name in names)
        params.update(zip(names, guard_params, strict=True))
        guard_cases.append(f"WHEN s.id IN ({guard_sql}) THEN {index}")
    guard = f"CASE {' '.join(guard_cases)} END" if guard_cases else "NULL::integer"
    sql = _SUMMARY_SQL.format(
        guard=guard,
        selected=selected_sql,
        consent=consent_sql,
        assignment=assignment,
        consent_columns=consent["columns"],
        joins="\n    ".join(joins),
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_SUMMARY_SETTINGS)
        cursor.execute(sql, params)
        groups = cursor.fetchall()

    summary = PlanSummary(kind=kind)
    left_out: dict[int, str] = {}
    for is_live, status, consent_state, covered_flags, guard_index, count, first_ids in groups:
        covered = {t for t, flag in zip(needed, covered_flags or (), strict=False) if flag}
        if is_live:
            summary.joined += count
            continue
        reason = ""
        if spec.consent is not Consent.NONE:
            if consent_product is not None:
                reason = consent_selectors.refusal_of_product_consent(
                    consent_product,
                    state=consent_state,
                    data_types=covered,
                    required=required,
                    asked=asked,
                )
            else:
                reason = consent_selectors.refusal_of_client_level_read(
                    covered if consent_state else None, asked=asked
                )
            if reason and spec.can_wait_for_consent:
                summary.awaiting_consent += count
        if not reason and spec.assignment is not None and spec.assignment.skip(status):
            reason = spec.assignment.skip_reason.format(product=product.name)
        if not reason and guard_index is not None:
            reason = guarded[guard_index][1]
        if not reason:
            summary.queued += count
            continue
        summary.skipped_reasons[reason] = summary.skipped_reasons.get(reason, 0) + count
        left_out.update(dict.fromkeys(first_ids, reason))
    shown = sorted(left_out)[:LEFT_OUT_SHOWN]
    companies_shown = Company.objects.in_bulk(shown)
    summary.left_out = [
        (companies_shown[pk], left_out[pk]) for pk in shown if pk in companies_shown
    ]
    return summary


def _summary_of_plan(plan: Plan, *, product, data_types) -> PlanSummary:
    """The summary of a per-company plan: on databases other than PostgreSQL (the SQLite of a
    first `make run`), where the summary's SQL does not run; the books there are small."""
    from companies.models import Company

    spec = spec_for(plan.kind)
    awaiting = 0
    if spec.can_wait_for_consent and plan.skipped:
        awaiting = len(
            companies_refused_for_consent(
                spec, company_ids=list(plan.skipped), product=product, data_types=data_types
            )
        )
    shown = list(plan.skipped)[:LEFT_OUT_SHOWN]
    companies = Company.objects.in_bulk(shown)
    return PlanSummary(
        kind=plan.kind,
        queued=len(plan.queued),
        joined=len(plan.joined),
        skipped_reasons=plan.skipped_reasons(),
        awaiting_consent=awaiting,
        left_out=[(companies[pk], plan.skipped[pk]) for pk in shown if pk in companies],
    )
