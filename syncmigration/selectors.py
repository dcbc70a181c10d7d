"""What the run page and `manage.py sync_migration status` show: progress per step, the wait's
countdown and what still runs, and the canary cohort's outcome."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from companies.models import ProductReadStatus
from operations.models import ACTIVE_STATES, Operation, OperationState
from products.models import CompanyProduct, CompanyProductStatus
from syncmigration.models import STAGES, Direction, MigrationRun, RunState, Stage


@dataclass
class StepProgress:
    stage: str
    label: str
    planned_calls: int
    forward: dict | None = None  # started_by, started_at, finished_at, outcome, counts, jobs
    rollback: dict | None = None
    current: bool = False


def _step_dict(step) -> dict:
    ids = step.all_operation_ids
    counts = dict(
        Operation.objects.filter(pk__in=ids)
        .values_list("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )
    return {
        "started_by": step.started_by.get_username() if step.started_by else "the portal",
        "started_at": step.started_at,
        "finished_at": step.finished_at,
        "outcome": step.outcome,
        "calls": len(ids),
        "live": sum(counts.get(state, 0) for state in ACTIVE_STATES),
        "succeeded": counts.get(OperationState.SUCCEEDED, 0) + counts.get(OperationState.JOINED, 0),
        "failed": counts.get(OperationState.FAILED, 0),
        "jobs": list(step.jobs.order_by("pk").values_list("pk", flat=True)),
    }


def run_progress(*, run: MigrationRun) -> list[StepProgress]:
    steps = {
        (step.stage, step.direction): step
        for step in run.steps.select_related("started_by").prefetch_related("jobs")
    }
    planned = (run.plan or {}).get("calls", {})
    progress = []
    for stage in STAGES:
        forward = steps.get((stage, Direction.FORWARD))
        rollback = steps.get((stage, Direction.ROLLBACK))
        progress.append(
            StepProgress(
                stage=stage,
                label=Stage(stage).label,
                planned_calls=planned.get(stage, 0),
                forward=_step_dict(forward) if forward else None,
                rollback=_step_dict(rollback) if rollback else None,
                current=run.stage == stage
                and run.state in (RunState.RUNNING, RunState.ROLLING_BACK),
            )
        )
    return progress


@dataclass
class WaitStatus:
    until: object | None
    seconds_left: int
    reads_running: list[dict] = field(default_factory=list)
    reads_running_count: int = 0


def run_wait_status(*, run: MigrationRun, limit: int = 20) -> WaitStatus | None:
    """Step 2's countdown and the client-level reads it still waits for."""
    if run.stage != Stage.WAIT or run.state != RunState.RUNNING:
        return None
    from syncmigration.services import client_reads_running

    running = client_reads_running(run).select_related("company")
    left = 0
    if run.wait_until is not None:
        left = max(0, int((run.wait_until - timezone.now()).total_seconds()))
    return WaitStatus(
        until=run.wait_until,
        seconds_left=left,
        reads_running=[
            {"company": read.company.name, "data_type": read.data_type_id, "since": read.requested}
            for read in running.order_by("requested")[:limit]
        ],
        reads_running_count=running.count(),
    )


@dataclass
class CanaryOutcome:
    companies: int
    adds_done: int
    adds_failed: int
    adds_running: int
    awaiting_consent: int
    reads_completed: int
    reads_failed: int
    freshest_read: object | None
    oldest_read: object | None


def canary_outcome(*, run: MigrationRun) -> CanaryOutcome | None:
    """How the cohort went: its adds, the product reads that completed, how fresh they are."""
    from syncmigration.services import _cohort

    step = run.steps.filter(stage=Stage.CANARY, direction=Direction.FORWARD).first()
    if step is None:
        return None
    cohort = _cohort(run, Stage.CANARY)
    products = list(run.products.all())
    adds = Operation.objects.filter(pk__in=step.operation_ids.get("add", []))
    states = dict(adds.values_list("state").annotate(n=Count("pk")).values_list("state", "n"))
    held = CompanyProduct.objects.filter(company_id__in=cohort, product__in=products)
    active = held.filter(status=CompanyProductStatus.ACTIVE).count()
    asked = len(cohort) * len(products) - held.exclude(status=CompanyProductStatus.REMOVED).count()
    reads = ProductReadStatus.objects.filter(
        assignment__company_id__in=cohort, product__in=products
    )
    figures = reads.aggregate(
        completed=Count("pk", filter=Q(last_status="Complete")),
        failed=Count("pk", filter=~Q(last_status__in=("", "Complete"))),
        freshest=Max("last_successful_read"),
        oldest=Min("last_successful_read"),
    )
    return CanaryOutcome(
        companies=len(cohort),
        adds_done=active,
        adds_failed=states.get(OperationState.FAILED, 0),
        adds_running=sum(states.get(state, 0) for state in ACTIVE_STATES),
        awaiting_consent=max(0, asked),
        reads_completed=figures["completed"],
        reads_failed=figures["failed"],
        freshest_read=figures["freshest"],
        oldest_read=figures["oldest"],
    )


def format_seconds(seconds: int) -> str:
    """A duration as people say it, to the two largest units: "40 s", "12 min 5 s", "23 h 59 min",
    "1 day" (not timedelta's "1 day, 0:00:00")."""
    days, rest = divmod(max(0, int(seconds)), 24 * 60 * 60)
    hours, rest = divmod(rest, 60 * 60)
    minutes, secs = divmod(rest, 60)
    parts = [
        (days, " day" if days == 1 else " days"),
        (hours, " h"),
        (minutes, " min"),
        (secs, " s"),
    ]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    (first, first_unit), (second, second_unit) = parts[0], (parts[1] if len(parts) > 1 else (0, ""))
    return f"{first}{first_unit}" + (f" {second}{second_unit}" if second else "")
