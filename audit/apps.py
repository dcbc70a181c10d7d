from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The one audit trail: who did what to what, when, from where and how (design invariant 10)."""

    name = "audit"
    verbose_name = "Audit trail"

    def ready(self):
        # Sign-ins, failed sign-ins, lockouts and the admin's own edit log feed the trail.
        from audit import signals  # noqa: F401
