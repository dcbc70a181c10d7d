"""A migration run: moving companies from client-level to product-level sync settings in the
five steps of Codat's plan ("Manage multiple use cases"), with the exact state before each step
kept so that a rollback restores it.

The run's Codat calls are ordinary Operation rows, grouped in one Job per step (so the job page
shows each step's progress); the run only says which step comes next. It is moved by
`syncmigration.services.migration_run_advance`, which a Celery task and beat call again and again
until the run is done: a worker killed mid-step loses nothing, the next call picks up from the
rows already written.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Stage(models.TextChoices):
    """The steps of a run, in order. Step 5 runs twice: first for the canary cohort, then, once
    an operator has looked at the cohort's outcome and continued, for everyone else."""

    DISABLE_CLIENT_SYNC = "disable_client_sync", "1. Disable client-level sync settings"
    WAIT = "wait", "2. Wait for client-level reads to end"
    DISABLE_WEBHOOKS = "disable_webhooks", "3. Disable the previous webhook configuration"
    SUBSCRIBE = "subscribe", "4. Subscribe to the new event types"
    CANARY = "canary", "5. Add the products: canary cohort"
    ADD_PRODUCTS = "add_products", "5. Add the products: everyone else"


STAGES = tuple(Stage)


class RunState(models.TextChoices):
    PLANNED = "planned", "Planned (nothing sent yet)"
    AWAITING_START_APPROVAL = "awaiting_start_approval", "Waiting for a second person to start"
    RUNNING = "running", "Running"
    CANARY_REVIEW = "canary_review", "Paused: review the canary cohort"
    AWAITING_CONTINUE_APPROVAL = (
        "awaiting_continue_approval",
        "Waiting for a second person to continue past the canary",
    )
    STOPPED = "stopped", "Stopped: a step failed"
    COMPLETED = "completed", "Completed"
    ROLLING_BACK = "rolling_back", "Rolling back"
    ROLLED_BACK = "rolled_back", "Rolled back"


# States the engine moves by itself (beat re-drives them).
DRIVEN_STATES = (RunState.RUNNING, RunState.ROLLING_BACK)


class ScopeKind(models.TextChoices):
    ALL = "all", "All companies"
    COMPANIES = "companies", "Named companies"
    FILTER = "filter", "Companies matching a filter"


class MigrationRun(models.Model):
    """One migration, from its plan to its end (completed or rolled back)."""

    scope_kind = models.CharField(max_length=16, choices=ScopeKind.choices)
    # For COMPANIES: the portal ids named; for FILTER: {"tag": "key=value"} or
    # {"name_contains": "..."}. Resolved into `company_ids` once, when the run starts, so the
    # run acts on a fixed set whatever is created meanwhile.
    scope_company_ids = models.JSONField(default=list, blank=True)
    scope_filter = models.JSONField(default=dict, blank=True)
    company_ids = models.JSONField(default=list, blank=True)
    products = models.ManyToManyField("products.Product", related_name="+")
    # The canary cohort: named companies, or a percentage of the scope (the first by id).
    canary_company_ids = models.JSONField(default=list, blank=True)
    canary_percent = models.PositiveSmallIntegerField(null=True, blank=True)
    # Where the new consumer sends events: the portal's own receiver.
    receiver_url = models.URLField(max_length=500)
    state = models.CharField(max_length=32, choices=RunState.choices, default=RunState.PLANNED)
    stage = models.CharField(max_length=32, choices=Stage.choices, blank=True)
    stage_started_at = models.DateTimeField(null=True, blank=True)
    # Step 2: the earliest moment the wait may end (the client-level reads still running are
    # checked on top of it).
    wait_until = models.DateTimeField(null=True, blank=True)
    # The dry run as it was when the run was planned, and again when it started.
    plan = models.JSONField(default=dict, blank=True)
    # -- the snapshot: what a rollback restores -------------------------------------------
    # Before step 1: {"settings": [...], "overridesDefaults": bool} as Codat answered.
    snapshot_client_settings = models.JSONField(null=True, blank=True)
    # Before step 1: company pk (as text) -> {"settings": [...], "overridesDefaults": bool}.
    snapshot_company_settings = models.JSONField(null=True, blank=True)
    # Before step 3: every consumer, [{"pk", "codat_id", "url", "event_types", "disabled",
    # "company_tags"}]; `disabled_consumers` maps each one step 3 disabled (pk) to its
    # disabled copy (pk).
    snapshot_consumers = models.JSONField(null=True, blank=True)
    disabled_consumers = models.JSONField(default=dict, blank=True)
    new_consumer = models.ForeignKey(
        "webhooks.WebhookConsumer",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Before step 5: company pk (as text) -> identifiers of the products it held.
    snapshot_assignments = models.JSONField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When the engine last looked at the run: beat re-drives a run nobody has looked at lately.
    advanced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-pk")
        permissions = (("run_sync_migration", "Start, continue and roll back sync migration runs"),)
        constraints = (
            models.CheckConstraint(
                condition=Q(state__in=RunState.values), name="migration_run_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(stage="") | Q(stage__in=Stage.values),
                name="migration_run_stage_valid",
            ),
            models.CheckConstraint(
                condition=Q(canary_percent__isnull=True)
                | Q(canary_percent__gte=1, canary_percent__lte=100),
                name="migration_run_canary_percent",
            ),
        )

    def __str__(self):
        return f"Sync migration #{self.pk}"


class Direction(models.TextChoices):
    FORWARD = "forward", "Done"
    ROLLBACK = "rollback", "Rolled back"


class MigrationStep(models.Model):
    """One step of a run, done or undone: who started it, when, its Codat calls (jobs)."""

    run = models.ForeignKey(MigrationRun, on_delete=models.CASCADE, related_name="steps")
    stage = models.CharField(max_length=32, choices=Stage.choices)
    direction = models.CharField(max_length=16, choices=Direction.choices)
    # The rows this step wrote, by phase (e.g. {"read": [...], "set": [...]}): the engine
    # waits on them, and a resumed run finds them instead of writing them again.
    operation_ids = models.JSONField(default=dict, blank=True)
    jobs = models.ManyToManyField("operations.Job", related_name="+", blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.TextField(blank=True)

    class Meta:
        ordering = ("run", "started_at", "pk")
        constraints = (
            models.UniqueConstraint(
                fields=("run", "stage", "direction"), name="migration_step_once"
            ),
            models.CheckConstraint(
                condition=Q(stage__in=Stage.values), name="migration_step_stage_valid"
            ),
            models.CheckConstraint(
                condition=Q(direction__in=Direction.values), name="migration_step_direction_valid"
            ),
        )

    def __str__(self):
        return f"{self.get_stage_display()} ({self.get_direction_display().lower()})"

    @property
    def all_operation_ids(self) -> list[int]:
        return [pk for ids in self.operation_ids.values() for pk in ids]
