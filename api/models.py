"""API keys: made by admins in the admin, shown once, kept only as a SHA-256 hash.

Each key acts as a user of its own (inactive, no password), made with the key: the records
that already name who did something (Operation.requested_by, Job.requested_by,
ConsentRequest.created_by, ConsentEvent.actor) then name the key, with no new column on them.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.roles import API_SCOPES


class ApiKey(models.Model):
    name = models.CharField(max_length=100, help_text="What calls with it, e.g. 'Onboarding'.")
    # The first characters of the key, shown in lists and logs: enough to tell keys apart.
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    # SHA-256 of the whole key. A key has 256 random bits, so a fast hash is enough (a slow
    # password hash protects guessable secrets, which these are not).
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_key", editable=False
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name = "API key"
        constraints = (
            models.CheckConstraint(
                condition=Q(key_hash__regex=r"^[0-9a-f]{64}$"), name="api_key_hash_hex"
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("created_at")),
                name="api_key_expires_after_creation",
            ),
        )

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    def is_expired(self, now=None) -> bool:
        return (now or timezone.now()) >= self.expires_at

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(scope for scope in self.scopes if scope in API_SCOPES)
