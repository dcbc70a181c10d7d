from django.db import models


class Via(models.TextChoices):
    SESSION = "session", "signed-in staff (session)"
    API_KEY = "api_key", "API key"
    SYSTEM = "system", "the portal itself (command, task)"


class AuditEntry(models.Model):
    """One thing a person or a system did that changed something. Append-only: PostgreSQL
    refuses UPDATE and DELETE on this table (migration 0002).

    The actor is kept by id and name, not as a foreign key: a deleted staff account must not
    rewrite (or be blocked by) the record of what it did.
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    actor = models.CharField(max_length=150, blank=True, help_text="login name, or empty")
    via = models.CharField(max_length=16, choices=Via.choices, default=Via.SYSTEM)
    api_key = models.CharField(max_length=100, blank=True, help_text="the key's name, never it")
    ip = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64, blank=True, db_index=True)
    target_id = models.CharField(max_length=64, blank=True, db_index=True)
    target = models.CharField(max_length=255, blank=True, help_text="what it was, as shown")
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("-at", "-pk")
        verbose_name = "audit entry"
        verbose_name_plural = "audit trail"
        indexes = [models.Index(fields=("target_type", "target_id", "at"))]
        permissions = [("export_company_data", "Can export everything held about a company")]

    def __str__(self) -> str:
        who = self.actor or self.get_via_display()
        return f"{self.at:%Y-%m-%d %H:%M:%S} {who} {self.action} {self.target}".strip()
