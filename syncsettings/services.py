"""The only writers of the portal's copy of Codat's sync settings, and the requests that read
or change them at Codat (each an operation row: operations/kinds.py runs the call).

A read records what Codat answered; a set records what Codat accepted. Both keep the time the
fact was seen, and an older fact never overwrites a newer one (a read answered before a set
was accepted, recorded after it).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from operations.models import Operation, OperationKind, OperationState
from operations.services import operation_write
from syncsettings.models import ClientSyncSettings, CompanySyncSettings, ScheduledDataType
from syncsettings.validation import SyncSettingsInvalid, scheduled_hours, sync_settings_clean

CLIENT_ROW = 1


# -- requests (operation rows) ------------------------------------------------------------------


def client_sync_settings_read_request(*, requested_by=None, job=None) -> Operation:
    """Read the client's sync settings from Codat; one live read at a time (a second joins)."""
    return operation_write(
        kind=OperationKind.READ_CLIENT_SYNC_SETTINGS,
        dedupe_key="read_client_sync_settings",
        requested_by=requested_by,
        job=job,
    )


def company_sync_settings_read_request(*, company, requested_by=None, job=None) -> Operation:
    """Read one company's sync settings from Codat (its own, or the client's it inherits)."""
    return operation_write(
        kind=OperationKind.READ_COMPANY_SYNC_SETTINGS,
        dedupe_key=f"read_company_sync_settings:{company.pk}",
        requested_by=requested_by,
        job=job,
        company=company,
    )


def _set_request(
    *, kind, target_key, settings, overrides_defaults, requested_by, job, extra=None, **target
):
    cleaned = sync_settings_clean(settings)
    if not isinstance(overrides_defaults, bool):
        raise SyncSettingsInvalid("overridesDefaults", "must be true or false")
    with transaction.atomic():
        # The newest wish wins: a set that has not started yet is replaced by this one.
        Operation.objects.filter(
            kind=kind, dedupe_key__startswith=f"{target_key}:", state=OperationState.PENDING
        ).update(
            state=OperationState.CANCELLED,
            finished_at=timezone.now(),
            last_error="superseded by later sync settings",
        )
        return operation_write(
            kind=kind,
            # Each set is its own row: a live one must not swallow a later, different wish.
            dedupe_key=f"{target_key}:{uuid.uuid4()}",
            parameters={
                "settings": cleaned,
                "overridesDefaults": overrides_defaults,
                **(extra or {}),
            },
            requested_by=requested_by,
            job=job,
            **target,
        )


def client_sync_settings_set_request(
    *,
    settings: list[dict],
    overrides_defaults: bool,
    requested_by=None,
    job=None,
) -> Operation:
    """Replace the client's sync settings at Codat. Bad settings raise SyncSettingsInvalid
    (naming the field) and write nothing."""
    client = ClientSyncSettings.objects.filter(pk=CLIENT_ROW).first()
    return _set_request(
        kind=OperationKind.SET_CLIENT_SYNC_SETTINGS,
        target_key="set_client_sync_settings",
        # Codat wants the client's id in the body: known from a read, the call needs no other.
        extra={"clientId": client.client_id} if client and client.client_id else None,
        settings=settings,
        overrides_defaults=overrides_defaults,
        requested_by=requested_by,
        job=job,
    )


def company_sync_settings_set_request(
    *,
    company,
    settings: list[dict],
    overrides_defaults: bool,
    requested_by=None,
    job=None,
) -> Operation:
    """Replace one company's sync settings at Codat (its override of the client's)."""
    return _set_request(
        kind=OperationKind.SET_COMPANY_SYNC_SETTINGS,
        target_key=f"set_company_sync_settings:{company.pk}",
        settings=settings,
        overrides_defaults=overrides_defaults,
        requested_by=requested_by,
        job=job,
        company=company,
    )


# -- what Codat said (called from the operation kinds' outcomes) ----------------------------------


def _scheduled_rows_replace(*, company_id: int | None, settings: Sequence[dict]) -> None:
    ScheduledDataType.objects.filter(company_id=company_id).delete()
    ScheduledDataType.objects.bulk_create(
        [
            ScheduledDataType(company_id=company_id, data_type=data_type, hours=hours)
            for data_type, hours in scheduled_hours(settings).items()
        ]
    )


@transaction.atomic
def client_sync_settings_record(
    *, client_id: str, settings: list[dict], overrides_defaults: bool, observed_at: datetime
) -> ClientSyncSettings | None:
    """Keep Codat's client-level settings as seen at `observed_at` (unless a newer fact is kept)."""
    current = ClientSyncSettings.objects.select_for_update().filter(pk=CLIENT_ROW).first()
    if current is not None and current.observed_at > observed_at:
        return None
    before = (current.settings, current.overrides_defaults) if current else None
    row, _ = ClientSyncSettings.objects.update_or_create(
        pk=CLIENT_ROW,
        defaults={
            "client_id": client_id or (current.client_id if current else ""),
            "settings": list(settings),
            "overrides_defaults": overrides_defaults,
            "observed_at": observed_at,
        },
    )
    _scheduled_rows_replace(company_id=None, settings=settings)
    if before != (row.settings, row.overrides_defaults):
        audit_record(
            action="syncsettings.client_recorded",
            target=row,
            changes={
                "scheduled": scheduled_hours(settings),
                "overridesDefaults": overrides_defaults,
            },
        )
    return row


@transaction.atomic
def company_sync_settings_record(
    *,
    company,
    settings: list[dict],
    overrides_defaults: bool,
    observed_at: datetime,
    written: bool = False,
) -> CompanySyncSettings | None:
    """Keep a company's own settings as seen at `observed_at`.

    Codat answers a read of a company without settings of its own with the client's and
    `overridesDefaults` false: that is no override, so no row is kept for it. Settings the
    portal `written` for the company are its own whatever they hold.
    """
    current = CompanySyncSettings.objects.select_for_update().filter(company=company).first()
    if current is not None and current.observed_at > observed_at:
        return None
    if not written and not overrides_defaults and _same_as_client(settings):
        if current is not None:
            current.delete()
            ScheduledDataType.objects.filter(company=company).delete()
        return None
    row, _ = CompanySyncSettings.objects.update_or_create(
        company=company,
        defaults={
            "settings": list(settings),
            "overrides_defaults": overrides_defaults,
            "observed_at": observed_at,
        },
    )
    _scheduled_rows_replace(company_id=company.pk, settings=settings)
    return row


def _same_as_client(settings: Sequence[dict]) -> bool:
    client = ClientSyncSettings.objects.filter(pk=CLIENT_ROW).first()
    return client is None or client.settings == list(settings)
