from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    """Four-eyes: actions above the admins' thresholds wait for a second staff member."""

    name = "approvals"
    verbose_name = "Four-eyes approvals"
