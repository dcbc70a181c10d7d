"""The webhook ledger, the webhook consumers registered at Codat, and the small mirrors that only
webhooks feed (write outcomes, bank-feed source accounts)."""

from django.db import models
from django.db.models import Q


class EventState(models.TextChoices):
    RECEIVED = "received", "Received, not processed yet"
    APPLIED = "applied", "Applied to the mirror"
    # Every change it carried was older than the state already recorded.
    SUPERSEDED = "superseded", "Superseded by a newer event"
    # An event type this portal has no handler for: kept and flagged, not an error.
    UNKNOWN_TYPE = "unknown_type", "Unknown event type"
    # Signed by Codat but impossible to apply (not JSON, missing fields): kept with the reason.
    QUARANTINED = "quarantined", "Quarantined"
    # Written by the reconciliation job: Codat's data status shows a read the ledger never got.
    MISSED = "missed", "Missed (found by reconciliation)"


class WebhookEvent(models.Model):
    """One message Codat delivered (or one found missing): the ledger of every webhook."""

    # Svix's message id (`webhook-id`/`svix-id`): the same on every retry, so the dedupe key.
    webhook_id = models.CharField("webhook id", max_length=255, unique=True)
    # The envelope's own `id` and fields, read at receipt when the body allows it.
    event_id = models.CharField("event id", max_length=64, blank=True)
    event_type = models.CharField(max_length=200, blank=True, db_index=True)
    generated_at = models.DateTimeField("generated at Codat", null=True, blank=True)
    company_codat_id = models.UUIDField("company (Codat id)", null=True, blank=True)
    company = models.ForeignKey(
        "companies.Company",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="webhook_events",
    )
    # The raw body exactly as signed, and the delivery headers (never Authorization or cookies).
    body = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True)
    signed_at = models.DateTimeField("signed at", null=True, blank=True)
    state = models.CharField(max_length=16, choices=EventState.choices, default=EventState.RECEIVED)
    state_reason = models.TextField(blank=True)
    # How many times processing ran to the end (replays count); a retry after a crash does not.
    times_processed = models.PositiveIntegerField(default=0)
    # Transient failures (database, Redis) of the latest attempt; the event stays `received`.
    last_error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-received_at", "-id")
        indexes = (
            # processed_at carried in the index: the dashboard's webhook lag (applied events of
            # the last 24 hours) is read from the index alone.
            models.Index(
                fields=("state", "received_at"),
                include=("processed_at",),
                name="webhook_event_state_recent",
            ),
            models.Index(fields=("company_codat_id", "event_type"), name="webhook_event_company"),
            # The company page's timeline: a company's newest events, however many it has.
            models.Index(fields=("company", "-received_at"), name="webhook_event_company_recent"),
        )
        constraints = (
            models.CheckConstraint(
                condition=Q(state__in=EventState.values), name="webhook_event_state_valid"
            ),
        )
        permissions = (("replay_event", "Can replay webhook events through the handlers"),)

    def __str__(self):
        return f"{self.event_type or '(no type)'} {self.webhook_id}"


class ConsumerStatus(models.TextChoices):
    PENDING_CREATE = "pending_create", "Being registered at Codat"
    ACTIVE = "active", "Registered"
    PENDING_DELETE = "pending_delete", "Being deleted at Codat"
    DELETED = "deleted", "Deleted"
    FAILED = "failed", "Failed"


class WebhookConsumer(models.Model):
    """A webhook consumer at Codat, as the portal wants it; operation rows make the calls."""

    url = models.URLField(max_length=500)
    event_types = models.JSONField(default=list)
    disabled = models.BooleanField(default=False)
    company_tags = models.JSONField(default=list, blank=True)
    status = models.CharField(
        max_length=16, choices=ConsumerStatus.choices, default=ConsumerStatus.PENDING_CREATE
    )
    # Codat's id for the consumer, known once the create call succeeded.
    codat_id = models.UUIDField("Codat id", null=True, blank=True, unique=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    status_changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = (
            models.CheckConstraint(
                condition=Q(status__in=ConsumerStatus.values), name="webhook_consumer_status_valid"
            ),
        )
        permissions = (("manage_consumers", "Can register and delete webhook consumers at Codat"),)

    def __str__(self):
        return f"{self.url} ({', '.join(self.event_types)})"


class WriteOutcome(models.Model):
    """The outcome of a write (push operation) as `{dataType}.write.*` webhooks report it."""

    push_operation_key = models.UUIDField(unique=True)
    company = models.ForeignKey(
        "companies.Company", on_delete=models.CASCADE, related_name="write_outcomes"
    )
    connection_codat_id = models.UUIDField("connection (Codat id)", null=True, blank=True)
    # From the event type's prefix, e.g. "bills" in bills.write.successful.
    data_type = models.CharField(max_length=64)
    operation_type = models.CharField(max_length=32, blank=True)
    status = models.CharField(max_length=16)
    requested_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    record_id = models.CharField(max_length=255, blank=True)
    attachment_id = models.CharField(max_length=255, blank=True)
    last_event_at = models.DateTimeField("last webhook event")

    class Meta:
        ordering = ("-last_event_at", "-id")

    def __str__(self):
        return f"{self.data_type} {self.operation_type} {self.status}"


class BankFeedSourceAccount(models.Model):
    """A bank-feed source account's feed, as `bankFeeds.sourceAccount.*` webhooks report it."""

    company = models.ForeignKey(
        "companies.Company", on_delete=models.CASCADE, related_name="bank_feed_source_accounts"
    )
    connection_codat_id = models.UUIDField("connection (Codat id)")
    account_id = models.CharField(max_length=255)
    account_name = models.CharField(max_length=255, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    feed_connected = models.BooleanField()
    # The account's own `status` field in the event (pending, connected, ...).
    reported_status = models.CharField(max_length=16, blank=True)
    last_event_at = models.DateTimeField("last webhook event")

    class Meta:
        ordering = ("company", "account_name", "id")
        constraints = (
            models.UniqueConstraint(
                fields=("connection_codat_id", "account_id"), name="source_account_unique"
            ),
        )

    def __str__(self):
        feed = "connected" if self.feed_connected else "disconnected"
        return f"{self.account_name or self.account_id} ({feed})"
