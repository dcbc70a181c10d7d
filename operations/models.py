"""Durable operations: one row per call that changes something at Codat, grouped into jobs.

A row is written in the same transaction as the desired state it drives (for example a
CompanyProduct in `pending_add`), before anything is attempted; Redis only ever carries its id.
Workers move it through the states below; see operations/tasks.py and operations/services.py.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class OperationKind(models.TextChoices):
    CREATE_COMPANY = "create_company", "Create company"
    ADD_PRODUCT = "add_product", "Add product"
    REMOVE_PRODUCT = "remove_product", "Remove product"
    REFRESH_PRODUCT = "refresh_product", "Refresh product data"
    REFRESH_ALL_DATA = "refresh_all_data", "Refresh all data"
    REFRESH_DATA_TYPE = "refresh_data_type", "Refresh data type"
    REGISTER_CONSUMER = "register_consumer", "Register webhook consumer"
    DELETE_CONSUMER = "delete_consumer", "Delete webhook consumer"
    LIST_CONSUMERS = "list_consumers", "Read webhook consumers"
    CREATE_BANK_FEED_CONNECTION = "create_bank_feed_connection", "Create bank-feed connection"
    READ_BANK_FEED_LINK = "read_bank_feed_link", "Read bank-feed link"
    CREATE_SOURCE_ACCOUNT = "create_source_account", "Create bank-feed source account"
    UPDATE_SOURCE_ACCOUNT = "update_source_account", "Update bank-feed source account"
    DELETE_SOURCE_ACCOUNT = "delete_source_account", "Delete bank-feed source account"
    READ_BANK_FEED_MAPPING = "read_bank_feed_mapping", "Read bank-feed account mapping"
    SET_BANK_FEED_MAPPING = "set_bank_feed_mapping", "Map a bank-feed source account"
    PUSH_BANK_TRANSACTIONS = "push_bank_transactions", "Push bank transactions"
    CHECK_BANK_FEED_PUSH = "check_bank_feed_push", "Check a bank-transactions push"
    READ_CLIENT_SYNC_SETTINGS = "read_client_sync_settings", "Read client sync settings"
    SET_CLIENT_SYNC_SETTINGS = "set_client_sync_settings", "Set client sync settings"
    READ_COMPANY_SYNC_SETTINGS = "read_company_sync_settings", "Read company sync settings"
    SET_COMPANY_SYNC_SETTINGS = "set_company_sync_settings", "Set company sync settings"


# Kinds whose rows act on no existing company (operations/kinds.py says what each acts on).
KINDS_WITHOUT_COMPANY = (
    OperationKind.CREATE_COMPANY,
    OperationKind.REGISTER_CONSUMER,
    OperationKind.DELETE_CONSUMER,
    OperationKind.LIST_CONSUMERS,
    OperationKind.READ_CLIENT_SYNC_SETTINGS,
    OperationKind.SET_CLIENT_SYNC_SETTINGS,
)
KINDS_ON_A_CONSUMER = (OperationKind.REGISTER_CONSUMER, OperationKind.DELETE_CONSUMER)


class OperationState(models.TextChoices):
    # Waiting for next_attempt_at (now, after a back-off, or after Codat's Retry-After).
    PENDING = "pending", "Pending"
    # Claimed by a worker (claim_token) and being attempted.
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    # Codat was already running the read asked for: satisfied, neither failed nor retried.
    JOINED = "joined", "Joined a running read"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATES = (OperationState.PENDING, OperationState.RUNNING)
FINISHED_STATES = (
    OperationState.SUCCEEDED,
    OperationState.JOINED,
    OperationState.FAILED,
    OperationState.CANCELLED,
)


class Job(models.Model):
    """The rows of one bulk action (one admin action over many companies, one API call)."""

    kind = models.CharField(max_length=32, choices=OperationKind.choices)
    product = models.ForeignKey(
        "products.Product", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    data_types = models.JSONField(default=list, blank=True)
    # What the person confirmed, in words ("Add Lending to 2,000 companies").
    description = models.CharField(max_length=255)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = (
            models.CheckConstraint(
                condition=Q(kind__in=OperationKind.values), name="job_kind_valid"
            ),
        )

    def __str__(self):
        return f"Job {self.pk}: {self.description}"


class Operation(models.Model):
    """One Codat-changing call, from the moment it is wanted until it is done or given up."""

    kind = models.CharField(max_length=32, choices=OperationKind.choices)
    # Empty for kinds that act on no company (KINDS_WITHOUT_COMPANY); a create_company row
    # gets the company once Codat has answered.
    company = models.ForeignKey(
        "companies.Company",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="operations",
    )
    product = models.ForeignKey(
        "products.Product", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The webhook consumer a register or delete row acts on.
    consumer = models.ForeignKey(
        "webhooks.WebhookConsumer",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="operations",
    )
    data_types = models.JSONField(default=list, blank=True)
    # Kind-specific input, e.g. the name, tags and products of a company to create.
    parameters = models.JSONField(default=dict, blank=True)
    state = models.CharField(
        max_length=16, choices=OperationState.choices, default=OperationState.PENDING
    )
    # Every call made to Codat for this row, and the transient failures among them (429s are
    # Codat asking to wait, not failures, so they do not count towards giving up).
    attempts = models.PositiveIntegerField(default=0)
    transient_failures = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # When the id was last handed to Celery: the sweeper re-sends rows Redis has lost.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Set by each claim; a worker finishes only the claim it holds, so a worker presumed dead
    # that wakes up cannot overwrite the outcome of the worker that took over.
    claim_token = models.UUIDField(null=True, blank=True)
    # Claims the sweeper took back because the worker died or hung while holding them. A row
    # that brings its worker down every time (a crash on this row's data) is failed after
    # CODAT_OPERATIONS_MAX_ABANDONED_CLAIMS of them, instead of taking a worker down forever.
    abandoned_claims = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_error_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error_correlation_id = models.CharField(max_length=100, blank=True)
    # What Codat said on success or join (e.g. the PullOperation id of a queued read).
    result = models.JSONField(default=dict, blank=True)
    # At most one live row per target: a second request for the same change joins the first.
    dedupe_key = models.CharField(max_length=200)
    # Sent to Codat where a retried call could otherwise repeat its effect (create company).
    idempotency_key = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    job = models.ForeignKey(
        Job, on_delete=models.SET_NULL, null=True, blank=True, related_name="operations"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = (
            models.Index(fields=("state", "next_attempt_at"), name="operation_due"),
            models.Index(fields=("company", "-created_at"), name="operation_company_timeline"),
            models.Index(fields=("job", "state"), name="operation_job_state"),
            # The operation list's order (the model's ordering).
            models.Index(fields=("-created_at", "-id"), name="operation_recent"),
            # The live rows of a kind: what a bulk action's review joins (planning.py).
            models.Index(
                fields=("kind", "company"),
                condition=Q(state__in=("pending", "running")),
                name="operation_live_by_kind",
            ),
        )
        constraints = (
            models.CheckConstraint(
                condition=Q(kind__in=OperationKind.values), name="operation_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(state__in=OperationState.values), name="operation_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=KINDS_WITHOUT_COMPANY) | Q(company__isnull=False),
                name="operation_has_company",
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=KINDS_ON_A_CONSUMER) | Q(consumer__isnull=False),
                name="operation_has_consumer",
            ),
            models.UniqueConstraint(
                fields=("dedupe_key",),
                condition=Q(state__in=("pending", "running")),
                name="operation_one_live_per_target",
            ),
        )

    def __str__(self):
        return f"{self.get_kind_display()} #{self.pk} ({self.state})"

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED_STATES
