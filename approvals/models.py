from django.conf import settings
from django.db import models


class FourEyesPolicy(models.Model):
    """The admins' thresholds: one row (pk 1), edited in the admin."""

    bulk_action_over = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=100,
        help_text="A bulk action (add, refresh) acting on more companies than this waits for a "
        "second person. Empty: never.",
    )
    product_removal_over = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=10,
        help_text="Removing a product from more companies than this waits. Empty: never.",
    )
    consent_text_publish = models.BooleanField(
        default=False, help_text="Publishing a consent text waits for a second person."
    )
    consumer_changes = models.BooleanField(
        default=False,
        help_text="Registering, disabling or deleting a webhook consumer waits for a second "
        "person.",
    )
    company_erasure = models.BooleanField(
        default=True,
        help_text="Erasing a company (GDPR: deleted at Codat and here) waits for a second person.",
    )

    class Meta:
        verbose_name = verbose_name_plural = "four-eyes thresholds"

    def __str__(self) -> str:
        return "Four-eyes thresholds"


class ApprovalAction(models.TextChoices):
    OPERATIONS_START = "operations_start", "bulk operation"
    CONSENT_TEXT_PUBLISH = "consent_text_publish", "publish a consent text"
    CONSUMER_REGISTER = "consumer_register", "register a webhook consumer"
    CONSUMER_DELETE = "consumer_delete", "delete a webhook consumer"
    CONSUMER_DISABLE = "consumer_disable", "disable a webhook consumer"
    COMPANY_ERASE = "company_erase", "erase a company (GDPR)"
    SYNC_MIGRATION_START = "sync_migration_start", "start a sync migration run"
    SYNC_MIGRATION_CONTINUE = "sync_migration_continue", "continue a sync migration past its canary"


class ApprovalState(models.TextChoices):
    PENDING = "pending", "waiting for a second person"
    APPROVED = "approved", "approved and done"
    REFUSED = "refused", "refused"
    FAILED = "failed", "approved, but could not be done"


class ApprovalRequest(models.Model):
    """An action a maker asked for that waits for a checker who is not the maker. The
    arguments are the service's own, by id, so the approved action is exactly the one asked."""

    action = models.CharField(max_length=32, choices=ApprovalAction.choices)
    arguments = models.JSONField(default=dict)
    summary = models.CharField(max_length=500)
    maker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    state = models.CharField(
        max_length=16, choices=ApprovalState.choices, default=ApprovalState.PENDING, db_index=True
    )
    checker = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    outcome = models.TextField(blank=True)

    class Meta:
        ordering = ("-created_at", "-pk")
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(checker=models.F("maker")),
                name="approval_checker_is_not_the_maker",
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.summary}"
