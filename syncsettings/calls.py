"""What each sync-settings operation sends to Codat and what its answer changes
(operations/kinds.py holds their specs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils import timezone

if TYPE_CHECKING:
    from codat.client import CodatClient
    from operations.models import Operation


def client_read_at_codat(client: CodatClient, operation: Operation) -> dict:
    return client.get_client_sync_settings()


def client_set_at_codat(client: CodatClient, operation: Operation) -> dict:
    params = operation.parameters
    # Codat wants the client's id in the body; the answer of a read carries it.
    client_id = params.get("clientId") or client.get_client_sync_settings()["clientId"]
    client.set_client_sync_settings(
        client_id, params["settings"], overrides_defaults=params["overridesDefaults"]
    )
    return {"clientId": client_id}


def company_read_at_codat(client: CodatClient, operation: Operation) -> dict:
    return client.get_company_sync_settings(str(operation.company.codat_id))


def company_set_at_codat(client: CodatClient, operation: Operation) -> dict:
    params = operation.parameters
    client.set_company_sync_settings(
        str(operation.company.codat_id),
        params["settings"],
        overrides_defaults=params["overridesDefaults"],
    )
    return {}


def client_read(operation: Operation, answer: dict) -> tuple[dict, dict]:
    from syncsettings.services import client_sync_settings_record

    settings = answer.get("settings") or []
    client_sync_settings_record(
        client_id=answer.get("clientId") or "",
        settings=settings,
        overrides_defaults=bool(answer.get("overridesDefaults")),
        observed_at=timezone.now(),
    )
    return {"settings": len(settings)}, {}


def client_set(operation: Operation, answer: dict) -> tuple[dict, dict]:
    from syncsettings.services import client_sync_settings_record

    params = operation.parameters
    client_sync_settings_record(
        client_id=answer.get("clientId") or "",
        settings=params["settings"],
        overrides_defaults=params["overridesDefaults"],
        observed_at=timezone.now(),
    )
    return {"accepted": True, "clientId": answer.get("clientId") or ""}, {}


def company_read(operation: Operation, answer: dict) -> tuple[dict, dict]:
    from syncsettings.services import company_sync_settings_record

    settings = answer.get("settings") or []
    company_sync_settings_record(
        company=operation.company,
        settings=settings,
        overrides_defaults=bool(answer.get("overridesDefaults")),
        observed_at=timezone.now(),
    )
    return {"settings": len(settings)}, {}


def company_set(operation: Operation, answer: dict) -> tuple[dict, dict]:
    from syncsettings.services import company_sync_settings_record

    params = operation.parameters
    company_sync_settings_record(
        company=operation.company,
        settings=params["settings"],
        overrides_defaults=params["overridesDefaults"],
        observed_at=timezone.now(),
        written=True,
    )
    return {"accepted": True}, {}
