"""The migration run: its plan (the dry run), its five steps, the canary pause and the rollback.

Every Codat call goes through the existing services (sync settings, webhook consumers, adding
and removing products), so each is an Operation row with the limiter, retries, sweeper and job
page of every other call. The run only decides what comes next:

- `migration_run_advance` is called by a Celery task (again and again, and by beat): under a lock
  on the run's row it looks at the rows the current step wrote, writes the next ones or moves on.
  Rows are written in the same transaction as the step's record of them, so a worker killed
  anywhere loses nothing: the next call finds the rows and waits on them, or writes them.
- Rollback undoes the steps done, newest first, each restoring the snapshot taken before it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from companies.models import Company, PullOperation
from consent.effects import awaiting_adds_settle
from consent.services import product_add_consent_requests_create
from operations import limiter
from operations.kinds import SPECS
from operations.models import ACTIVE_STATES, Job, Operation, OperationKind, OperationState
from operations.planning import companies_refused_for_consent
from operations.services import job_cancel_rest, operations_start
from products.models import HELD_STATUSES, CompanyProduct, ProductKind
from syncmigration.models import (
    DRIVEN_STATES,
    STAGES,
    Direction,
    MigrationRun,
    MigrationStep,
    RunState,
    ScopeKind,
    Stage,
)
from syncsettings.models import ClientSyncSettings, CompanySyncSettings
from syncsettings.selectors import dual_sync_risks
from syncsettings.services import (
    client_sync_settings_read_request,
    client_sync_settings_set_request,
    company_sync_settings_read_request,
    company_sync_settings_set_request,
)
from webhooks.consumers import (
    webhook_consumer_delete,
    webhook_consumer_disable,
    webhook_consumer_register,
)
from webhooks.models import ConsumerStatus, WebhookConsumer

logger = logging.getLogger(__name__)

# The foundation's operation kinds (syncsettings/), by value.
READ_CLIENT_SYNC_SETTINGS = "read_client_sync_settings"
SET_CLIENT_SYNC_SETTINGS = "set_client_sync_settings"
# Codat's plan waits at least an hour after disabling client-level settings.
MINIMUM_WAIT_SECONDS = 3600
# Event types of the previous configuration that step 3 turns off: read notifications, new and
# legacy names (consumers for other events, e.g. connections, are left as they are).
LEGACY_READ_EVENT_TYPES = frozenset(
    {"DataSyncCompleted", "DatasetDataChanged", "DatasetStatusChanged", "Data sync completed"}
)
# How often a running run looks at its rows again: a few cheap queries, once a second.
POLL_SECONDS = 1.0


class MigrationRefused(Exception):
    """A request about a run that cannot be done; the message names the field and the reason."""


class _StepFailed(Exception):
    """A step's Codat call failed for good: the run stops, with the reason, for an operator."""


def is_read_event(event_type: str) -> bool:
    return "read.completed" in event_type or event_type in LEGACY_READ_EVENT_TYPES


def new_read_event_types(products) -> list[str]:
    """Step 4's subscriptions: `read.completed` for standard products, `{id}.read.completed`
    for each custom one."""
    types = set()
    for product in products:
        if product.kind == ProductKind.CUSTOM:
            types.add(f"{product.identifier}.read.completed")
        else:
            types.add("read.completed")
    return sorted(types)


# -- scope ------------------------------------------------------------------------------------


def scope_companies(*, scope_kind: str, company_ids=(), scope_filter: dict | None = None):
    """The companies a scope names (deleted ones never), as a queryset."""
    companies = Company.objects.filter(codat_deleted_at__isnull=True)
    if scope_kind == ScopeKind.ALL:
        return companies
    if scope_kind == ScopeKind.COMPANIES:
        return companies.filter(pk__in=list(company_ids))
    if scope_kind == ScopeKind.FILTER:
        scope_filter = scope_filter or {}
        if scope_filter.get("tag"):
            key, _, value = str(scope_filter["tag"]).partition("=")
            return companies.filter(tags__contains={key: value})
        if scope_filter.get("name_contains"):
            return companies.filter(name__icontains=scope_filter["name_contains"])
        raise MigrationRefused('scope_filter: give "tag" (key=value) or "name_contains".')
    raise MigrationRefused(f"scope_kind: {scope_kind!r} is not one of {', '.join(ScopeKind)}.")


def canary_cohort(*, company_ids: list[int], named=(), percent: int | None = None) -> list[int]:
    """The canary's companies: the ones named, or the first `percent` % of the scope by id
    (at least one)."""
    if named:
        return sorted(set(named))
    if percent:
        ordered = sorted(company_ids)
        return ordered[: max(1, math.ceil(len(ordered) * percent / 100))]
    return []


# -- the dry run ------------------------------------------------------------------------------


@dataclass
class ProductPlan:
    identifier: str
    name: str
    custom: bool
    canary_adds: int = 0
    adds: int = 0
    already_held: int = 0
    lacking_consent: list[int] = field(default_factory=list)
    # company pk -> data types a client-level schedule and this product would both read
    dual_sync_risks: dict[int, list[str]] = field(default_factory=dict)


@dataclass
class MigrationPlan:
    """What a run will do, before anything is sent."""

    company_count: int
    canary_count: int
    company_overrides: int
    calls: dict[str, int]
    consumers_to_disable: list[dict]
    consumers_kept: int
    new_consumer_event_types: list[str]
    products: list[ProductPlan]
    wait_seconds: int
    calls_per_minute: float
    quota_used: int
    quota_limit: int | None

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def adds_waiting_for_consent(self) -> int:
        return sum(len(product.lacking_consent) for product in self.products)

    @property
    def minutes_of_calls(self) -> float:
        return self.total_calls / self.calls_per_minute

    @property
    def estimated_seconds(self) -> int:
        """Calls at today's pace, plus step 2's wait; a quota too small adds the days it lacks."""
        seconds = self.minutes_of_calls * 60 + self.wait_seconds
        if self.quota_limit:
            left_today = max(0, self.quota_limit - self.quota_used)
            if self.total_calls > left_today:
                seconds += 86400 * math.ceil((self.total_calls - left_today) / self.quota_limit)
        return int(seconds)

    @property
    def fits_in_todays_quota(self) -> bool | None:
        if not self.quota_limit:
            return None
        return self.total_calls <= self.quota_limit - self.quota_used

    @property
    def dual_sync_companies(self) -> int:
        companies = set()
        for product in self.products:
            companies |= set(product.dual_sync_risks)
        return len(companies)

    def as_dict(self) -> dict:
        return {
            **asdict(self),
            "total_calls": self.total_calls,
            "estimated_seconds": self.estimated_seconds,
            "adds_waiting_for_consent": self.adds_waiting_for_consent,
            "dual_sync_companies": self.dual_sync_companies,
        }


def _consumers_to_disable():
    return [
        consumer
        for consumer in WebhookConsumer.objects.filter(
            status__in=(ConsumerStatus.ACTIVE, ConsumerStatus.PENDING_CREATE), disabled=False
        ).order_by("pk")
        if any(is_read_event(event_type) for event_type in consumer.event_types)
    ]


def _consumer_snapshot(consumer: WebhookConsumer) -> dict:
    return {
        "pk": consumer.pk,
        "codat_id": str(consumer.codat_id) if consumer.codat_id else None,
        "url": consumer.url,
        "event_types": sorted(consumer.event_types),
        "disabled": consumer.disabled,
        "company_tags": list(consumer.company_tags),
    }


def step4_event_types(*, products, receiver_url: str, disabled: list[dict]) -> list[str]:
    """The new read events, and every other event the disabled consumers sent to the portal's
    receiver (connections, writes...), so the portal keeps hearing what it heard before."""
    carried = {
        event_type
        for consumer in disabled
        if consumer["url"] == receiver_url
        for event_type in consumer["event_types"]
        if not is_read_event(event_type)
    }
    return sorted(carried | set(new_read_event_types(products)))


def _shortest_schedule_hours(settings_lists) -> int | None:
    hours = [
        setting.get("syncSchedule") or 0
        for settings_list in settings_lists
        for setting in settings_list or []
    ]
    positive = [value for value in hours if value > 0]
    return min(positive) if positive else None


def wait_seconds_for(settings_lists) -> int:
    """Step 2's wait: an hour, or the most frequent previous schedule's period if longer.
    SYNC_MIGRATION_WAIT_SECONDS replaces it (tests, benchmarks); the check that no client-level
    read is still running is made whatever the wait."""
    configured = getattr(settings, "SYNC_MIGRATION_WAIT_SECONDS", None)
    if configured is not None:
        return int(configured)
    shortest = _shortest_schedule_hours(settings_lists)
    return max(MINIMUM_WAIT_SECONDS, (shortest or 0) * 3600)


def _products_plan(*, company_ids, canary_ids, products) -> list[ProductPlan]:
    spec = SPECS[OperationKind.ADD_PRODUCT]
    canary = set(canary_ids)
    plans = []
    for product in products:
        refused = companies_refused_for_consent(
            spec, company_ids=company_ids, product=product, data_types=()
        )
        statuses = dict(
            CompanyProduct.objects.filter(company_id__in=company_ids, product=product).values_list(
                "company_id", "status"
            )
        )
        plan = ProductPlan(
            identifier=product.identifier,
            name=product.name,
            custom=product.kind == ProductKind.CUSTOM,
        )
        for company_id in company_ids:
            if spec.assignment.skip(statuses.get(company_id)):
                plan.already_held += 1
            elif company_id in refused:
                plan.lacking_consent.append(company_id)
            elif company_id in canary:
                plan.canary_adds += 1
            else:
                plan.adds += 1
        if plan.custom:
            risks = dual_sync_risks(company_ids=company_ids, product=product)
            plan.dual_sync_risks = {pk: list(types) for pk, types in risks.items() if types}
        plans.append(plan)
    return plans


def migration_plan(
    *, company_ids: list[int], canary_ids: list[int], products, receiver_url: str
) -> MigrationPlan:
    """The dry run: companies, calls per step, time at today's pace and quota, consent, the
    webhook changes and the dual-sync risks removed. Writes nothing and calls nobody."""
    products = list(products)
    overrides = list(
        CompanySyncSettings.objects.filter(company_id__in=company_ids).values_list(
            "settings", flat=True
        )
    )
    client = ClientSyncSettings.objects.first()
    disable = _consumers_to_disable()
    disabled = [_consumer_snapshot(consumer) for consumer in disable]
    product_plans = _products_plan(
        company_ids=company_ids, canary_ids=canary_ids, products=products
    )
    quota = limiter.daily_quota()
    return MigrationPlan(
        company_count=len(company_ids),
        canary_count=len(canary_ids),
        company_overrides=len(overrides),
        calls={
            # read the client's settings and each override (the snapshot), then set them all
            Stage.DISABLE_CLIENT_SYNC: 2 + 2 * len(overrides),
            Stage.WAIT: 0,
            # Codat cannot edit a consumer: a disabled copy is registered, the original deleted
            Stage.DISABLE_WEBHOOKS: 2 * len(disable),
            Stage.SUBSCRIBE: 1,
            Stage.CANARY: sum(plan.canary_adds for plan in product_plans),
            Stage.ADD_PRODUCTS: sum(plan.adds for plan in product_plans),
        },
        consumers_to_disable=disabled,
        consumers_kept=WebhookConsumer.objects.filter(
            status__in=(ConsumerStatus.ACTIVE, ConsumerStatus.PENDING_CREATE)
        ).count()
        - len(disable),
        new_consumer_event_types=step4_event_types(
            products=products, receiver_url=receiver_url, disabled=disabled
        ),
        products=product_plans,
        wait_seconds=wait_seconds_for(
            [client.settings if client else [], *overrides],
        ),
        calls_per_minute=limiter.calls_per_minute(),
        quota_used=quota.used,
        quota_limit=quota.limit,
    )


def migration_run_plan(*, run: MigrationRun) -> MigrationPlan:
    company_ids = run.company_ids or list(
        scope_companies(
            scope_kind=run.scope_kind,
            company_ids=run.scope_company_ids,
            scope_filter=run.scope_filter,
        ).values_list("pk", flat=True)
    )
    canary_ids = canary_cohort(
        company_ids=company_ids, named=run.canary_company_ids, percent=run.canary_percent
    )
    return migration_plan(
        company_ids=sorted(company_ids),
        canary_ids=canary_ids,
        products=run.products.order_by("identifier"),
        receiver_url=run.receiver_url,
    )


# -- creating, starting, continuing, rolling back -------------------------------------------


@transaction.atomic
def migration_run_create(
    *,
    scope_kind: str,
    products,
    receiver_url: str,
    company_ids=(),
    scope_filter: dict | None = None,
    canary_company_ids=(),
    canary_percent: int | None = None,
    created_by=None,
) -> MigrationRun:
    """A planned run (nothing is sent until it starts). Bad input changes nothing."""
    products = list(products)
    if not products:
        raise MigrationRefused("products: name at least one product to move the companies to.")
    scope = scope_companies(
        scope_kind=scope_kind, company_ids=company_ids, scope_filter=scope_filter
    )
    in_scope = set(scope.values_list("pk", flat=True))
    if scope_kind == ScopeKind.COMPANIES:
        unknown = sorted(set(company_ids) - in_scope)
        if unknown:
            raise MigrationRefused(f"company_ids: no such companies: {unknown[:10]}.")
    if not in_scope:
        raise MigrationRefused("scope: no company matches it.")
    if bool(canary_company_ids) == bool(canary_percent):
        raise MigrationRefused(
            "canary: name the cohort's companies or give a percentage of the scope (one of them)."
        )
    if canary_percent is not None and not 1 <= canary_percent <= 100:
        raise MigrationRefused("canary_percent: must be between 1 and 100.")
    outside = sorted(set(canary_company_ids) - in_scope)
    if outside:
        raise MigrationRefused(f"canary_company_ids: not in the scope: {outside[:10]}.")
    if not receiver_url.startswith(("http://", "https://")):
        raise MigrationRefused("receiver_url: must be the portal's http(s) webhook address.")
    run = MigrationRun(
        scope_kind=scope_kind,
        scope_company_ids=sorted(set(company_ids)),
        scope_filter=scope_filter or {},
        canary_company_ids=sorted(set(canary_company_ids)),
        canary_percent=canary_percent,
        receiver_url=receiver_url,
        created_by=created_by,
    )
    run.full_clean(exclude=["products"])
    run.save()
    run.products.set(products)
    run.plan = migration_run_plan(run=run).as_dict()
    run.save(update_fields=["plan"])
    audit_record(
        action="syncmigration.planned",
        actor=created_by,
        target=run,
        changes={
            "scope_kind": scope_kind,
            "companies": len(in_scope),
            "products": [product.identifier for product in products],
            "calls": run.plan["calls"],
        },
    )
    return run


def _needs_approval(company_count: int) -> bool:
    from approvals.services import policy

    limit = policy().bulk_action_over
    return limit is not None and company_count > limit


def _lock(run: MigrationRun) -> MigrationRun:
    return MigrationRun.objects.select_for_update().get(pk=run.pk)


def _enqueue_advance(run_id: int, countdown: float | None = None) -> None:
    from syncmigration.tasks import QUEUE, migration_run_advance_task

    transaction.on_commit(
        lambda: migration_run_advance_task.apply_async((run_id,), countdown=countdown, queue=QUEUE)
    )


def migration_run_start(*, run: MigrationRun, user, approved: bool = False):
    """Start the run, or ask a second person first when the four-eyes policy says so.
    Returns the run, or the approval request it waits for."""
    from approvals.models import ApprovalAction
    from approvals.services import approval_request

    with transaction.atomic():
        run = _lock(run)
        if run.state not in (RunState.PLANNED, RunState.AWAITING_START_APPROVAL):
            raise MigrationRefused(f"state: the run is {run.get_state_display().lower()}.")
        if run.state == RunState.AWAITING_START_APPROVAL and not approved:
            raise MigrationRefused("state: the start waits for a second person's approval.")
        company_ids = sorted(
            scope_companies(
                scope_kind=run.scope_kind,
                company_ids=run.scope_company_ids,
                scope_filter=run.scope_filter,
            ).values_list("pk", flat=True)
        )
        if not approved and _needs_approval(len(company_ids)):
            run.state = RunState.AWAITING_START_APPROVAL
            run.save(update_fields=["state"])
            return approval_request(
                action=ApprovalAction.SYNC_MIGRATION_START,
                arguments={"run_id": run.pk},
                summary=f"start sync migration #{run.pk}: {len(company_ids)} companies",
                maker=user,
            )
        run.company_ids = company_ids
        run.plan = migration_run_plan(run=run).as_dict()
        run.state = RunState.RUNNING
        run.stage = Stage.DISABLE_CLIENT_SYNC
        run.stage_started_at = timezone.now()
        run.save()
        MigrationStep.objects.create(
            run=run, stage=Stage.DISABLE_CLIENT_SYNC, direction=Direction.FORWARD, started_by=user
        )
        audit_record(
            action="syncmigration.started",
            actor=user,
            target=run,
            changes={"companies": len(company_ids), "calls": run.plan["calls"]},
        )
        _enqueue_advance(run.pk)
    return run


def migration_run_continue(*, run: MigrationRun, user, approved: bool = False):
    """Past the canary: step 5 for everyone else (or ask a second person first). A run stopped
    by a failed call goes on from where it stopped (retry the failed rows from the step's job
    first): the step looks at its rows again."""
    from approvals.models import ApprovalAction
    from approvals.services import approval_request

    with transaction.atomic():
        run = _lock(run)
        if run.state == RunState.STOPPED:
            rolling_back = run.steps.filter(direction=Direction.ROLLBACK).exists()
            run.state = RunState.ROLLING_BACK if rolling_back else RunState.RUNNING
            run.last_error = ""
            run.save(update_fields=["state", "last_error"])
            audit_record(
                action="syncmigration.resumed", actor=user, target=run, changes={"stage": run.stage}
            )
            _enqueue_advance(run.pk)
            return run
        if run.state not in (RunState.CANARY_REVIEW, RunState.AWAITING_CONTINUE_APPROVAL):
            raise MigrationRefused(
                f"state: only a run paused after its canary can continue; this one is "
                f"{run.get_state_display().lower()}."
            )
        if run.state == RunState.AWAITING_CONTINUE_APPROVAL and not approved:
            raise MigrationRefused("state: continuing waits for a second person's approval.")
        rest = len(run.company_ids) - run.plan.get("canary_count", 0)
        if not approved and _needs_approval(rest):
            run.state = RunState.AWAITING_CONTINUE_APPROVAL
            run.save(update_fields=["state"])
            return approval_request(
                action=ApprovalAction.SYNC_MIGRATION_CONTINUE,
                arguments={"run_id": run.pk},
                summary=f"continue sync migration #{run.pk} past its canary: {rest} companies",
                maker=user,
            )
        run.state = RunState.RUNNING
        run.stage = Stage.ADD_PRODUCTS
        run.stage_started_at = timezone.now()
        run.save(update_fields=["state", "stage", "stage_started_at"])
        MigrationStep.objects.create(
            run=run, stage=Stage.ADD_PRODUCTS, direction=Direction.FORWARD, started_by=user
        )
        audit_record(action="syncmigration.continued", actor=user, target=run, changes={})
        _enqueue_advance(run.pk)
    return run


ROLLBACK_FROM = (
    RunState.RUNNING,
    RunState.CANARY_REVIEW,
    RunState.AWAITING_CONTINUE_APPROVAL,
    RunState.STOPPED,
    RunState.COMPLETED,
)


def migration_run_rollback(*, run: MigrationRun, user, reason: str = "") -> MigrationRun:
    """Undo the steps done (the current one included), newest first, back to the snapshot."""
    with transaction.atomic():
        run = _lock(run)
        if run.state not in ROLLBACK_FROM:
            raise MigrationRefused(
                f"state: a run that is {run.get_state_display().lower()} cannot be rolled back."
            )
        done = _stages_done(run)
        if not done:
            raise MigrationRefused("state: nothing was done yet, so nothing to roll back.")
        run.state = RunState.ROLLING_BACK
        run.stage = done[-1]
        run.stage_started_at = timezone.now()
        run.last_error = ""
        run.save(update_fields=["state", "stage", "stage_started_at", "last_error"])
        MigrationStep.objects.get_or_create(
            run=run,
            stage=done[-1],
            direction=Direction.ROLLBACK,
            defaults={"started_by": user},
        )
        audit_record(
            action="syncmigration.rollback",
            actor=user,
            target=run,
            changes={"from_stage": done[-1], "stages": list(reversed(done)), "reason": reason},
        )
        _enqueue_advance(run.pk)
    return run


def _stages_done(run: MigrationRun) -> list[str]:
    """The stages started forward, in order (a stage cut short counts: it is undone too)."""
    started = set(run.steps.filter(direction=Direction.FORWARD).values_list("stage", flat=True))
    return [stage for stage in STAGES if stage in started]


# -- the engine -------------------------------------------------------------------------------


def migration_run_advance(*, run_id: int) -> str:
    """Look at the run's current step once: write its next rows, or move to the next step.

    One step boundary per call: the next call (at once when a step ended, after POLL_SECONDS
    while rows run) starts the next step, so a rollback asked between two steps finds the
    later one not started.
    """
    with transaction.atomic():
        run = MigrationRun.objects.select_for_update(skip_locked=True).filter(pk=run_id).first()
        if run is None:
            return "busy"  # another worker holds it: that one goes on
        if run.state not in DRIVEN_STATES:
            return run.state
        run.advanced_at = timezone.now()
        moved = _forward(run) if run.state == RunState.RUNNING else _backward(run)
        run.save()
        if run.state in DRIVEN_STATES:
            _enqueue_advance(run.pk, countdown=None if moved else POLL_SECONDS)
        return run.state


def migration_runs_redrive(*, stale_seconds: float = 30) -> int:
    """Beat: every driven run nobody has advanced lately gets a task again (a lost message,
    a worker killed while holding it)."""
    from syncmigration.tasks import QUEUE, migration_run_advance_task

    stale = timezone.now() - timedelta(seconds=stale_seconds)
    ids = list(
        MigrationRun.objects.filter(state__in=DRIVEN_STATES)
        .exclude(advanced_at__gt=stale)
        .values_list("pk", flat=True)
    )
    for run_id in ids:
        migration_run_advance_task.apply_async((run_id,), queue=QUEUE)
    return len(ids)


def _step(run: MigrationRun, stage: str, direction: str) -> MigrationStep:
    step, _ = MigrationStep.objects.get_or_create(
        run=run, stage=stage, direction=direction, defaults={"started_by": _driver(run)}
    )
    return step


def _driver(run: MigrationRun):
    """Who is behind what the engine does now: the person of the run's latest decision."""
    latest = run.steps.exclude(started_by=None).order_by("-started_at", "-pk").first()
    return latest.started_by if latest else run.created_by


def _step_job(run: MigrationRun, step: MigrationStep, *, kind: str, what: str) -> Job:
    job = Job.objects.create(
        kind=kind,
        description=f"Sync migration #{run.pk}: {what}"[:255],
        requested_by=step.started_by,
    )
    step.jobs.add(job)
    return job


def _attach(job: Job, operations) -> list[int]:
    ids = [operation.pk for operation in operations]
    Operation.objects.filter(pk__in=ids, job__isnull=True).update(job=job)
    return ids


def _rows_finished(ids: list[int], *, fail_on_failure: bool = True) -> bool:
    """True once none of the rows is live; a row that failed for good stops the run."""
    rows = Operation.objects.filter(pk__in=ids)
    if rows.filter(state__in=ACTIVE_STATES).exists():
        return False
    failed = rows.filter(state=OperationState.FAILED).first()
    if failed is not None and fail_on_failure:
        raise _StepFailed(
            f"{failed.get_kind_display()} #{failed.pk} failed: {failed.last_error or 'no reason'}"
        )
    return True


def _finish_step(step: MigrationStep, outcome: str) -> None:
    step.finished_at = timezone.now()
    step.outcome = outcome
    step.save(update_fields=["finished_at", "outcome"])
    audit_record(
        action=f"syncmigration.{step.direction}",
        actor=step.started_by,
        target=step.run,
        changes={"stage": step.stage, "outcome": outcome},
    )


def _forward(run: MigrationRun) -> bool:
    step = _step(run, run.stage, Direction.FORWARD)
    try:
        outcome = FORWARD[run.stage](run, step)
    except _StepFailed as failure:
        run.state = RunState.STOPPED
        run.last_error = f"{step.get_stage_display()}: {failure}"
        audit_record(
            action="syncmigration.stopped",
            target=run,
            changes={"stage": run.stage, "reason": str(failure)},
        )
        return False
    if outcome is None:
        return False
    _finish_step(step, outcome)
    position = STAGES.index(run.stage)
    if run.stage == Stage.CANARY:
        run.state = RunState.CANARY_REVIEW
    elif position == len(STAGES) - 1:
        run.state = RunState.COMPLETED
        run.finished_at = timezone.now()
    else:
        run.stage = STAGES[position + 1]
        run.stage_started_at = timezone.now()
    return True


def _backward(run: MigrationRun) -> bool:
    step = _step(run, run.stage, Direction.ROLLBACK)
    try:
        outcome = BACKWARD[run.stage](run, step)
    except _StepFailed as failure:
        run.state = RunState.STOPPED
        run.last_error = f"rolling back {step.get_stage_display()}: {failure}"
        return False
    if outcome is None:
        return False
    _finish_step(step, outcome)
    done = _stages_done(run)
    earlier = [stage for stage in done if STAGES.index(stage) < STAGES.index(run.stage)]
    if earlier:
        run.stage = earlier[-1]
        run.stage_started_at = timezone.now()
    else:
        run.state = RunState.ROLLED_BACK
        run.finished_at = timezone.now()
    return True


# -- step 1: client-level sync settings -----------------------------------------------------


def disabled_settings(settings_list: list[dict]) -> list[dict]:
    """The same settings with nothing scheduled and nothing fetched on first link."""
    return [{**setting, "syncSchedule": 0, "fetchOnFirstLink": False} for setting in settings_list]


def _client_snapshot() -> dict:
    client = ClientSyncSettings.objects.first()
    return {"settings": client.settings, "overridesDefaults": client.overrides_defaults}


def _disable_client_sync(run: MigrationRun, step: MigrationStep) -> str | None:
    ids = step.operation_ids
    driver = step.started_by
    if "read" not in ids:
        job = _step_job(run, step, kind=SET_CLIENT_SYNC_SETTINGS, what="step 1, sync settings")
        overridden = Company.objects.filter(
            pk__in=CompanySyncSettings.objects.filter(company_id__in=run.company_ids).values(
                "company_id"
            )
        ).order_by("pk")
        reads = [client_sync_settings_read_request(requested_by=driver, job=job)]
        reads += [
            company_sync_settings_read_request(company=company, requested_by=driver, job=job)
            for company in overridden
        ]
        step.operation_ids = {"read": _attach(job, reads)}
        step.save(update_fields=["operation_ids"])
        return None
    if "set" not in ids:
        if not _rows_finished(ids["read"]):
            return None
        job = step.jobs.order_by("pk").first()
        run.snapshot_client_settings = _client_snapshot()
        company_ids = list(
            Operation.objects.filter(pk__in=ids["read"], company__isnull=False).values_list(
                "company_id", flat=True
            )
        )
        overrides = {
            row.company_id: row
            for row in CompanySyncSettings.objects.filter(
                company_id__in=company_ids
            ).select_related("company")
        }
        run.snapshot_company_settings = {
            str(pk): {"settings": row.settings, "overridesDefaults": row.overrides_defaults}
            for pk, row in overrides.items()
        }
        run.save(update_fields=["snapshot_client_settings", "snapshot_company_settings"])
        sets = [
            client_sync_settings_set_request(
                settings=disabled_settings(run.snapshot_client_settings["settings"]),
                overrides_defaults=run.snapshot_client_settings["overridesDefaults"],
                requested_by=driver,
                job=job,
            )
        ]
        sets += [
            company_sync_settings_set_request(
                company=row.company,
                settings=disabled_settings(row.settings),
                overrides_defaults=row.overrides_defaults,
                requested_by=driver,
                job=job,
            )
            for _, row in sorted(overrides.items())
        ]
        step.operation_ids = {**ids, "set": _attach(job, sets)}
        step.save(update_fields=["operation_ids"])
        return None
    if not _rows_finished(ids["set"]):
        return None
    return (
        f"client-level settings disabled ({len(run.snapshot_client_settings['settings'])} data "
        f"types) and {_count(len(run.snapshot_company_settings), 'company override')}"
    )


def _restore_client_sync(run: MigrationRun, step: MigrationStep) -> str | None:
    forward = run.steps.get(stage=Stage.DISABLE_CLIENT_SYNC, direction=Direction.FORWARD)
    if not _rows_finished(forward.all_operation_ids, fail_on_failure=False):
        return None  # a call of the step still runs: undo it once it has answered
    if run.snapshot_client_settings is None:
        return "nothing was changed: the step had only read the settings"
    ids = step.operation_ids
    if "set" not in ids:
        job = _step_job(run, step, kind=SET_CLIENT_SYNC_SETTINGS, what="undo step 1")
        driver = step.started_by
        sets = [
            client_sync_settings_set_request(
                settings=run.snapshot_client_settings["settings"],
                overrides_defaults=run.snapshot_client_settings["overridesDefaults"],
                requested_by=driver,
                job=job,
            )
        ]
        companies = Company.objects.in_bulk([int(pk) for pk in run.snapshot_company_settings])
        for pk, saved in sorted(run.snapshot_company_settings.items(), key=lambda i: int(i[0])):
            sets.append(
                company_sync_settings_set_request(
                    company=companies[int(pk)],
                    settings=saved["settings"],
                    overrides_defaults=saved["overridesDefaults"],
                    requested_by=driver,
                    job=job,
                )
            )
        step.operation_ids = {"set": _attach(job, sets)}
        step.save(update_fields=["operation_ids"])
        return None
    if not _rows_finished(ids["set"]):
        return None
    return "client-level settings and company overrides restored from the snapshot"


# -- step 2: the wait -----------------------------------------------------------------------


def client_reads_running(run: MigrationRun):
    """The mirror's reads still running for the scope, of the data types the previous
    client-level settings covered (a read started before step 1 may still be going)."""
    data_types = {
        setting["dataType"]
        for saved in [
            run.snapshot_client_settings or {},
            *(run.snapshot_company_settings or {}).values(),
        ]
        for setting in saved.get("settings") or []
    }
    return PullOperation.objects.filter(
        company_id__in=run.company_ids,
        data_type_id__in=data_types,
        is_completed=False,
        is_errored=False,
    )


def _wait(run: MigrationRun, step: MigrationStep) -> str | None:
    now = timezone.now()
    if run.wait_until is None:
        saved = [
            run.snapshot_client_settings or {},
            *(run.snapshot_company_settings or {}).values(),
        ]
        seconds = wait_seconds_for([entry.get("settings") for entry in saved])
        run.wait_until = now + timedelta(seconds=seconds)
    if now < run.wait_until:
        return None
    if client_reads_running(run).exists():
        return None
    return f"waited until {run.wait_until:%Y-%m-%d %H:%M:%S} UTC; no client-level read running"


def _nothing_to_undo(run: MigrationRun, step: MigrationStep) -> str:
    return "a wait changes nothing at Codat"


# -- steps 3 and 4: webhook consumers -------------------------------------------------------


def _disable_webhooks(run: MigrationRun, step: MigrationStep) -> str | None:
    ids = step.operation_ids
    if "disable" not in ids:
        job = _step_job(
            run, step, kind=OperationKind.DELETE_CONSUMER, what="step 3, disable webhooks"
        )
        run.snapshot_consumers = [
            _consumer_snapshot(consumer)
            for consumer in WebhookConsumer.objects.filter(
                status__in=(ConsumerStatus.ACTIVE, ConsumerStatus.PENDING_CREATE)
            ).order_by("pk")
        ]
        disabled = {}
        for consumer in _consumers_to_disable():
            copy = webhook_consumer_disable(consumer=consumer, requested_by=step.started_by)
            if copy is not None:
                disabled[str(consumer.pk)] = copy.pk
        run.disabled_consumers = disabled
        run.save(update_fields=["snapshot_consumers", "disabled_consumers"])
        rows = Operation.objects.filter(
            consumer_id__in=[*map(int, disabled), *disabled.values()], state__in=ACTIVE_STATES
        )
        step.operation_ids = {"disable": _attach(job, rows)}
        step.save(update_fields=["operation_ids"])
        return None
    if not _rows_finished(ids["disable"]):
        return None
    return _count(len(run.disabled_consumers), "consumer") + " of read events disabled"


def _enable_webhooks(run: MigrationRun, step: MigrationStep) -> str | None:
    forward = run.steps.get(stage=Stage.DISABLE_WEBHOOKS, direction=Direction.FORWARD)
    if not _rows_finished(forward.all_operation_ids, fail_on_failure=False):
        return None
    ids = step.operation_ids
    if "enable" not in ids:
        job = _step_job(
            run, step, kind=OperationKind.REGISTER_CONSUMER, what="undo step 3, enable webhooks"
        )
        touched = []
        consumers = WebhookConsumer.objects.in_bulk(
            [int(pk) for pk in run.disabled_consumers] + list(run.disabled_consumers.values())
        )
        for original_pk, copy_pk in sorted(run.disabled_consumers.items()):
            original = consumers[int(original_pk)]
            again = webhook_consumer_register(
                url=original.url,
                event_types=original.event_types,
                disabled=False,
                company_tags=original.company_tags,
                requested_by=step.started_by,
            )
            webhook_consumer_delete(consumer=consumers[copy_pk], requested_by=step.started_by)
            touched += [again.pk, copy_pk]
        rows = Operation.objects.filter(consumer_id__in=touched, state__in=ACTIVE_STATES)
        step.operation_ids = {"enable": _attach(job, rows)}
        step.save(update_fields=["operation_ids"])
        return None
    if not _rows_finished(ids["enable"]):
        return None
    return _count(len(run.disabled_consumers), "consumer") + " enabled again"


def _subscribe(run: MigrationRun, step: MigrationStep) -> str | None:
    ids = step.operation_ids
    if "register" not in ids:
        job = _step_job(
            run, step, kind=OperationKind.REGISTER_CONSUMER, what="step 4, new event types"
        )
        disabled_pks = {int(pk) for pk in run.disabled_consumers}
        consumer = webhook_consumer_register(
            url=run.receiver_url,
            event_types=step4_event_types(
                products=run.products.all(),
                receiver_url=run.receiver_url,
                disabled=[c for c in run.snapshot_consumers or [] if c["pk"] in disabled_pks],
            ),
            requested_by=step.started_by,
        )
        run.new_consumer = consumer
        run.save(update_fields=["new_consumer"])
        rows = Operation.objects.filter(consumer=consumer, state__in=ACTIVE_STATES)
        step.operation_ids = {"register": _attach(job, rows)}
        step.save(update_fields=["operation_ids"])
        return None
    if not _rows_finished(ids["register"]):
        return None
    return f"consumer registered for {', '.join(run.new_consumer.event_types)}"


def _unsubscribe(run: MigrationRun, step: MigrationStep) -> str | None:
    forward = run.steps.get(stage=Stage.SUBSCRIBE, direction=Direction.FORWARD)
    if not _rows_finished(forward.all_operation_ids, fail_on_failure=False):
        return None
    ids = step.operation_ids
    if "delete" not in ids:
        if run.new_consumer is None:
            return "no consumer had been registered"
        job = _step_job(run, step, kind=OperationKind.DELETE_CONSUMER, what="undo step 4")
        webhook_consumer_delete(consumer=run.new_consumer, requested_by=step.started_by)
        rows = Operation.objects.filter(consumer=run.new_consumer, state__in=ACTIVE_STATES)
        step.operation_ids = {"delete": _attach(job, rows)}
        step.save(update_fields=["operation_ids"])
        return None
    if not _rows_finished(ids["delete"]):
        return None
    return "the migration's consumer deleted"


# -- step 5: the products, canary first -----------------------------------------------------


def _cohort(run: MigrationRun, stage: str) -> list[int]:
    canary = canary_cohort(
        company_ids=run.company_ids, named=run.canary_company_ids, percent=run.canary_percent
    )
    if stage == Stage.CANARY:
        return canary
    return sorted(set(run.company_ids) - set(canary))


def _assignments_snapshot(run: MigrationRun) -> dict:
    held: dict[str, list[str]] = {str(pk): [] for pk in run.company_ids}
    for company_id, identifier in CompanyProduct.objects.filter(
        company_id__in=run.company_ids, status__in=HELD_STATUSES
    ).values_list("company_id", "product__identifier"):
        held[str(company_id)].append(identifier)
    return {pk: sorted(products) for pk, products in held.items()}


def _add_products(run: MigrationRun, step: MigrationStep) -> str | None:
    ids = step.operation_ids
    if "add" not in ids:
        if run.snapshot_assignments is None:
            run.snapshot_assignments = _assignments_snapshot(run)
            run.save(update_fields=["snapshot_assignments"])
        cohort = _cohort(run, step.stage)
        added, asked = [], 0
        for product in run.products.order_by("identifier"):
            job, plan = operations_start(
                kind=OperationKind.ADD_PRODUCT,
                company_ids=cohort,
                product=product,
                requested_by=step.started_by,
            )
            step.jobs.add(job)
            added += [operation.pk for operation in plan.operations]
            refused = companies_refused_for_consent(
                SPECS[OperationKind.ADD_PRODUCT],
                company_ids=list(plan.skipped),
                product=product,
                data_types=(),
            )
            # Without consent: a request each; the add goes ahead on the grant
            # (consent/effects.py). Other reasons (already held) are not helped by asking.
            asked += len(
                product_add_consent_requests_create(
                    companies=Company.objects.filter(pk__in=refused).order_by("pk"),
                    product=product,
                    user=step.started_by,
                )
            )
        step.operation_ids = {"add": added}
        step.outcome = _count(asked, "consent request") + " sent"
        step.save(update_fields=["operation_ids", "outcome"])
        return None
    # A failed add is shown on the run page (and can be retried from its job), not a stop:
    # the other companies' adds stand.
    if not _rows_finished(ids["add"], fail_on_failure=False):
        return None
    rows = Operation.objects.filter(pk__in=ids["add"])
    succeeded = rows.filter(state__in=(OperationState.SUCCEEDED, OperationState.JOINED)).count()
    failed = rows.filter(state=OperationState.FAILED).count()
    return f"{_count(succeeded, 'add')} done, {failed} failed; {step.outcome}"


def _remove_products(run: MigrationRun, step: MigrationStep) -> str | None:
    ids = step.operation_ids
    forward = run.steps.get(stage=step.stage, direction=Direction.FORWARD)
    if "cancelled" not in ids:
        # Adds not yet sent are dropped, and adds waiting for consent stop waiting.
        for job in forward.jobs.all():
            job_cancel_rest(job=job)
        _settle_consent_requests(run)
        step.operation_ids = {"cancelled": []}
        step.save(update_fields=["operation_ids"])
        return None
    if "remove" not in ids:
        if not _rows_finished(forward.all_operation_ids, fail_on_failure=False):
            return None  # adds being attempted finish first; their removal follows
        snapshot = run.snapshot_assignments or {}
        cohort = _cohort(run, step.stage)
        removed = []
        for product in run.products.order_by("identifier"):
            held_now = set(
                CompanyProduct.objects.filter(
                    company_id__in=cohort, product=product, status__in=HELD_STATUSES
                ).values_list("company_id", flat=True)
            )
            added = sorted(
                pk for pk in held_now if product.identifier not in snapshot.get(str(pk), [])
            )
            if not added:
                continue
            job, plan = operations_start(
                kind=OperationKind.REMOVE_PRODUCT,
                company_ids=added,
                product=product,
                requested_by=step.started_by,
            )
            step.jobs.add(job)
            removed += [operation.pk for operation in plan.operations]
            removed += [operation.pk for operation in plan.joined.values()]
        step.operation_ids = {**ids, "remove": removed}
        step.save(update_fields=["operation_ids"])
        return None
    if not _rows_finished(ids["remove"]):
        return None
    return _count(len(ids["remove"]), "product assignment") + " removed"


def _settle_consent_requests(run: MigrationRun) -> None:
    """The run's consent requests stop waiting: a grant after the rollback must not add."""
    first = (
        run.steps.filter(stage__in=(Stage.CANARY, Stage.ADD_PRODUCTS), direction=Direction.FORWARD)
        .order_by("started_at")
        .first()
    )
    if first is not None:
        awaiting_adds_settle(
            company_ids=run.company_ids, products=run.products.all(), created_since=first.started_at
        )


FORWARD = {
    Stage.DISABLE_CLIENT_SYNC: _disable_client_sync,
    Stage.WAIT: _wait,
    Stage.DISABLE_WEBHOOKS: _disable_webhooks,
    Stage.SUBSCRIBE: _subscribe,
    Stage.CANARY: _add_products,
    Stage.ADD_PRODUCTS: _add_products,
}
BACKWARD = {
    Stage.DISABLE_CLIENT_SYNC: _restore_client_sync,
    Stage.WAIT: _nothing_to_undo,
    Stage.DISABLE_WEBHOOKS: _enable_webhooks,
    Stage.SUBSCRIBE: _unsubscribe,
    Stage.CANARY: _remove_products,
    Stage.ADD_PRODUCTS: _remove_products,
}
assert set(FORWARD) == set(BACKWARD) == set(Stage)


def _count(number: int, noun: str) -> str:
    """ "1 consumer", "3 consumers": the outcomes staff read on the run page."""
    return f"{number} {noun}{'' if number == 1 else 's'}"
