"""The portal's copy of Codat's sync settings: the client's and each company's override.

Written only through syncsettings/services.py, from what Codat answered to a read or accepted
in a write. `ScheduledDataType` is derived from the two: one row per data type a client-level
schedule reads (`syncSchedule` above 0), so that which companies risk dual syncs is a join in
the database rather than a loop over companies (syncsettings/selectors.py).
"""

from django.db import models
from django.db.models import Q


class ClientSyncSettings(models.Model):
    """The client's sync settings as Codat holds them (one row)."""

    client_id = models.CharField(max_length=64)
    # Codat's `SyncSetting` objects, exactly as Codat holds them.
    settings = models.JSONField(default=list)
    overrides_defaults = models.BooleanField(default=False)
    # When Codat's answer was seen, or when Codat accepted the portal's write.
    observed_at = models.DateTimeField()

    class Meta:
        verbose_name = "sync settings"
        verbose_name_plural = "sync settings"
        # Admins only (core/roles.py): the settings decide what Codat reads for every company.
        permissions = (
            ("change_sync_settings", "Can change Codat's sync settings"),
            ("override_dual_sync", "Can add a custom product despite a dual-sync risk"),
        )
        constraints = (models.CheckConstraint(condition=Q(id=1), name="client_sync_settings_one"),)

    def __str__(self):
        return f"Sync settings of client {self.client_id}"


class CompanySyncSettings(models.Model):
    """A company's own sync settings at Codat, which replace the client's for that company."""

    company = models.OneToOneField(
        "companies.Company", on_delete=models.CASCADE, related_name="sync_settings"
    )
    settings = models.JSONField(default=list)
    overrides_defaults = models.BooleanField(default=False)
    observed_at = models.DateTimeField()

    class Meta:
        verbose_name = "company sync settings"
        verbose_name_plural = "company sync settings"

    def __str__(self):
        return f"Sync settings of {self.company}"


class ScheduledDataType(models.Model):
    """A data type a client-level schedule reads: the client's (no company) or a company's own."""

    company = models.ForeignKey(
        "companies.Company",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="scheduled_data_types",
    )
    data_type = models.CharField(max_length=40)
    hours = models.PositiveIntegerField()

    class Meta:
        constraints = (
            models.UniqueConstraint(
                fields=("company", "data_type"), name="scheduled_data_type_unique"
            ),
            models.UniqueConstraint(
                fields=("data_type",),
                condition=Q(company__isnull=True),
                name="scheduled_data_type_client_unique",
            ),
            models.CheckConstraint(condition=Q(hours__gt=0), name="scheduled_data_type_hours"),
        )

    def __str__(self):
        return f"{self.data_type} every {self.hours} h"


class SyncModeKind(models.TextChoices):
    """How Codat reads a company's data, as far as the portal's copy of the settings says."""

    CLIENT_LEVEL = "client_level", "Client-level"
    PRODUCT_LEVEL = "product_level", "Product-level"
    DUAL_SYNC_RISK = "dual_sync_risk", "Dual-sync risk"
    NONE = "none", "No scheduled reads"
