"""Consent: texts shown to SMB owners, the links that ask for consent, and the evidence log.

The evidence (`ConsentEvent`) is append-only, in the database as well as here. `CurrentConsent`
is what the evidence adds up to per company and product, kept beside it by consent/services.py in
the same transaction as each event, so that counting consent over 100,000 companies reads one row
per pair instead of replaying their events; the event log stays the evidence it is checked
against (tests/consent/test_current_consent.py).
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from companies.models import Company


class AppendOnlyError(Exception):
    """An attempt to change or delete a row of the consent evidence."""


class AppendOnlyQuerySet(models.QuerySet):
    """Bulk paths (`update()`, `delete()`) refused in Python too; a trigger refuses the rest."""

    def update(self, **kwargs):
        raise AppendOnlyError("Consent evidence is append-only.")

    def delete(self):
        raise AppendOnlyError("Consent evidence is append-only.")


class ConsentText(models.Model):
    """One version of what an SMB owner is shown for a product (use case).

    `content` is the exact document shown (purpose, data types with their descriptions,
    retention, controller, what withdrawal does); `content_hash` is the SHA-256 of its canonical
    JSON and is what each consent event records. Versions are never edited: a change makes a
    new version.
    """

    product = models.ForeignKey(
        "products.Product", on_delete=models.PROTECT, related_name="consent_texts"
    )
    version = models.PositiveIntegerField()
    # The two texts staff write; everything else in `content` comes from the catalogue
    # and the settings when the version is made.
    purpose = models.TextField()
    retention = models.TextField()
    # The retention in days, for the retention run: consent evidence of an erased company is
    # deleted this many days after the erasure (consent/services.py).
    retention_days = models.PositiveIntegerField(
        default=2190,
        help_text="Days the consent evidence is kept after the company is erased.",
    )
    content = models.JSONField()
    content_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ("product", "-version")
        get_latest_by = "version"
        constraints = (
            models.UniqueConstraint(fields=("product", "version"), name="consent_text_version"),
            models.CheckConstraint(condition=~Q(purpose=""), name="consent_text_has_purpose"),
            models.CheckConstraint(
                condition=Q(content_hash__regex=r"^[0-9a-f]{64}$"), name="consent_text_hash_hex"
            ),
        )

    def __str__(self):
        return f"{self.product.identifier} v{self.version}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise AppendOnlyError("A consent text version is never edited; publish a new one.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("A consent text version is evidence and is never deleted.")

    @property
    def short_hash(self) -> str:
        return self.content_hash[:12]


class Campaign(models.Model):
    """A batch of consent requests sent to many companies at once."""

    name = models.CharField(max_length=200)
    products = models.ManyToManyField("products.Product", related_name="consent_campaigns")
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ("-created_at",)
        constraints = (models.CheckConstraint(condition=~Q(name=""), name="campaign_has_name"),)

    def __str__(self):
        return self.name


class ConsentRequestReason(models.TextChoices):
    ADMIN = "admin", "Sent by an operator"
    CAMPAIGN = "campaign", "Part of a campaign"
    PRODUCT_ADDED = "product_added", "A product was added without consent"


class ConsentRequest(models.Model):
    """A one-time link asking one company to consent to one or more products.

    Only the SHA-256 of the link's token is kept: a copy of the database opens nothing.
    The link is spent (`opened_at`) when its "Continue" is pressed and it is exchanged for a
    session; opening the link (a GET) spends nothing.
    """

    token_hash = models.CharField(max_length=64, unique=True)
    company = models.ForeignKey(
        "companies.Company", on_delete=models.PROTECT, related_name="consent_requests"
    )
    products = models.ManyToManyField("products.Product", related_name="consent_requests")
    campaign = models.ForeignKey(
        Campaign, on_delete=models.PROTECT, null=True, blank=True, related_name="requests"
    )
    reason = models.CharField(
        max_length=16, choices=ConsentRequestReason.choices, default=ConsentRequestReason.ADMIN
    )
    email = models.EmailField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    expires_at = models.DateTimeField()
    emailed_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    # Set once every product of the request has a grant or a decline.
    answered_at = models.DateTimeField(null=True, blank=True)
    # For PRODUCT_ADDED: the add that waits for this consent went ahead (or was dropped).
    product_add_settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        permissions = (
            ("send_consent_requests", "Can send consent requests and campaigns"),
            ("record_consent_for_customer", "Can record consent on a customer's behalf"),
        )
        constraints = (
            models.CheckConstraint(
                condition=Q(token_hash__regex=r"^[0-9a-f]{64}$"), name="consent_request_hash_hex"
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("created_at")),
                name="consent_request_expires_after_creation",
            ),
            models.CheckConstraint(
                condition=Q(reason__in=ConsentRequestReason.values),
                name="consent_request_reason_valid",
            ),
        )

    def __str__(self):
        return f"Consent request #{self.pk} for {self.company}"

    def is_expired(self, now=None) -> bool:
        return (now or timezone.now()) >= self.expires_at


class ConsentAction(models.TextChoices):
    GRANT = "grant", "Granted"
    DECLINE = "decline", "Declined"
    WITHDRAW = "withdraw", "Withdrawn"
    RECONFIRM = "reconfirm", "Reconfirmed"
    EXPIRE = "expire", "Expired (not reconfirmed in time)"


class ConsentChannel(models.TextChoices):
    LINK = "link", "Consent link"
    MANAGE = "manage", "Manage-my-consent page"
    ADMIN = "admin", "Operator acting for the customer"
    SYSTEM = "system", "Portal (reconfirmation policy)"


class ConsentEvent(models.Model):
    """One row of consent evidence. Rows are only ever added (a trigger refuses the rest).

    Who: `company` (the data subject's business) and, for the admin channel, the operator.
    When: `occurred_at`, UTC. How: `channel`, `token_hash` (the SHA-256 already stored on the
    request, never the token), `client` (IP prefix and user agent, nothing more). What:
    `product`, `data_types`, and `text_hash`, the version of the text that was shown.
    Events written together share a `receipt_id`, which is the Kantara consentReceiptID.
    """

    receipt_id = models.UUIDField(default=uuid.uuid4, db_index=True)
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    company = models.ForeignKey(
        "companies.Company", on_delete=models.PROTECT, related_name="consent_events"
    )
    product = models.ForeignKey(
        "products.Product", on_delete=models.PROTECT, related_name="consent_events"
    )
    action = models.CharField(max_length=12, choices=ConsentAction.choices)
    # The data types the action is about: granted ones for a grant, those offered for a
    # decline, those that stop being covered for a withdrawal or an expiry.
    data_types = models.JSONField(default=list)
    text = models.ForeignKey(ConsentText, on_delete=models.PROTECT, related_name="events")
    text_hash = models.CharField(max_length=64)
    channel = models.CharField(max_length=8, choices=ConsentChannel.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The operator's name as it was when acting, so the evidence reads the same later.
    actor_name = models.CharField(max_length=150, blank=True)
    request = models.ForeignKey(
        ConsentRequest, on_delete=models.PROTECT, null=True, blank=True, related_name="events"
    )
    token_hash = models.CharField(max_length=64, blank=True)
    client = models.JSONField(default=dict, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ("-occurred_at", "-id")
        get_latest_by = ("occurred_at", "id")
        indexes = (
            models.Index(
                fields=("company", "product", "occurred_at"), name="consent_event_by_company"
            ),
            # The company page's timeline: a company's newest events across its products.
            models.Index(fields=("company", "-occurred_at"), name="consent_event_company_recent"),
        )
        constraints = (
            models.CheckConstraint(
                condition=Q(action__in=ConsentAction.values), name="consent_event_action_valid"
            ),
            models.CheckConstraint(
                condition=Q(channel__in=ConsentChannel.values), name="consent_event_channel_valid"
            ),
            models.CheckConstraint(
                condition=Q(text_hash__regex=r"^[0-9a-f]{64}$"), name="consent_event_text_hash_hex"
            ),
            # An operator acting for the customer is always named.
            models.CheckConstraint(
                condition=~Q(channel="admin") | (Q(actor__isnull=False) & ~Q(actor_name="")),
                name="consent_event_admin_names_operator",
            ),
            # A consent link always leaves the hash of its token in the evidence.
            models.CheckConstraint(
                condition=~Q(channel="link") | Q(token_hash__regex=r"^[0-9a-f]{64}$"),
                name="consent_event_link_has_token_hash",
            ),
        )

    def __str__(self):
        return f"{self.get_action_display()}: {self.company} · {self.product} ({self.occurred_at})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Consent events are append-only: record a new event instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Consent events are append-only and are never deleted.")


class StoredConsentState(models.TextChoices):
    """What a company's events for one product add up to, before the clock is applied: a grant
    older than the reconfirmation policy is stored as active, and read as needing
    reconfirmation (consent.selectors)."""

    ACTIVE = "active", "Active"
    # An expiry was recorded after the last grant or reconfirmation.
    RECONFIRM_NEEDED = "reconfirm_needed", "Reconfirmation needed"
    WITHDRAWN = "withdrawn", "Withdrawn"
    DECLINED = "declined", "Declined"


class CurrentConsent(models.Model):
    """One company's consent for one product as its events add up to now: the replay of
    `consent.selectors._replay`, stored. Written only by consent/services.py, in the transaction
    that records the event; a pair with no grant, withdrawal or decline has no row."""

    company = models.ForeignKey(
        "companies.Company", on_delete=models.PROTECT, related_name="current_consents"
    )
    product = models.ForeignKey(
        "products.Product", on_delete=models.PROTECT, related_name="current_consents"
    )
    state = models.CharField(max_length=16, choices=StoredConsentState.choices)
    # The data types the grant in force covers; empty once withdrawn or declined.
    data_types = models.JSONField(default=list)
    granted_at = models.DateTimeField(null=True, blank=True)
    # The last grant or reconfirmation: what the reconfirmation policy counts from.
    confirmed_at = models.DateTimeField(null=True, blank=True)
    last_event = models.ForeignKey(ConsentEvent, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=("company", "product"), name="current_consent_pair"),
            models.CheckConstraint(
                condition=Q(state__in=StoredConsentState.values), name="current_consent_state_valid"
            ),
        )
        indexes = (
            # The dashboard's and the bulk reviews' counts: per product, by state.
            models.Index(fields=("product", "state"), name="current_consent_by_product"),
        )

    def __str__(self):
        return f"{self.company_id} · {self.product_id}: {self.state}"


class CompanyConsent(Company):
    """Admin entry point: per company, its products x data types consent matrix."""

    class Meta:
        proxy = True
        default_permissions = ("view",)
        verbose_name = "company consent"
        verbose_name_plural = "company consent"
