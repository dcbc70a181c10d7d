"""Services that write the Codat mirror. Callers hand over Codat's own JSON (camelCase)."""

import uuid
from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from companies.models import Company, Connection, DataTypeStatus, PullOperation


def parse_codat_datetime(value: str | None) -> datetime | None:
    """Codat sends ISO 8601, sometimes without an offset; those times are UTC."""
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        raise ValueError(f"not an ISO 8601 date-time: {value!r}")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return parsed


def _uuid_or_none(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


@transaction.atomic
def company_mirror_from_codat(*, data: dict) -> Company:
    """Create or update the mirror of a Codat Company; its `products` become assignments."""
    company, _ = Company.objects.update_or_create(
        codat_id=uuid.UUID(data["id"]),
        defaults={
            "name": data["name"],
            "description": data.get("description") or "",
            "tags": data.get("tags") or {},
            "redirect": data["redirect"],
            "codat_created_at": parse_codat_datetime(data.get("created")),
            "last_sync": parse_codat_datetime(data.get("lastSync")),
        },
    )
    if "products" in data:
        from products.services import company_products_mirror_from_codat

        company_products_mirror_from_codat(company=company, product_identifiers=data["products"])
    for connection_data in data.get("dataConnections") or ():
        connection_mirror_from_codat(company=company, data=connection_data)
    return company


def connection_mirror_from_codat(*, company: Company, data: dict) -> Connection:
    connection, _ = Connection.objects.update_or_create(
        codat_id=uuid.UUID(data["id"]), defaults=connection_fields_from_codat(company, data)
    )
    return connection


def connection_fields_from_codat(company: Company, data: dict) -> dict:
    """The mirror's fields of a Codat connection, except its id."""
    return {
        "company": company,
        "integration_id": data.get("integrationId") or "",
        "integration_key": data.get("integrationKey") or "",
        "source_id": data.get("sourceId") or "",
        "platform_name": data.get("platformName") or "",
        "source_type": data.get("sourceType") or "Unknown",
        "status": data["status"],
        "link_url": data.get("linkUrl") or "",
        "last_sync": parse_codat_datetime(data.get("lastSync")),
        "codat_created_at": parse_codat_datetime(data.get("created")),
        "errors": data.get("dataConnectionErrors") or [],
    }


@transaction.atomic
def data_status_mirror_from_codat(*, company: Company, data_statuses: dict) -> None:
    """Apply Codat's dataStatus answer: an object keyed by data type."""
    for data_type, status in data_statuses.items():
        DataTypeStatus.objects.update_or_create(
            company=company,
            data_type_id=data_type,
            defaults={
                "current_status": status.get("currentStatus") or "",
                "last_successful_sync": parse_codat_datetime(status.get("lastSuccessfulSync")),
                "latest_sync_id": _uuid_or_none(status.get("latestSyncId")),
                "latest_successful_sync_id": _uuid_or_none(status.get("latestSuccessfulSyncId")),
            },
        )


def pull_operation_mirror_from_codat(*, company: Company, data: dict) -> PullOperation:
    connection_id = _uuid_or_none(data.get("connectionId"))
    connection = (
        Connection.objects.filter(codat_id=connection_id).first() if connection_id else None
    )
    operation, _ = PullOperation.objects.update_or_create(
        codat_id=uuid.UUID(data["id"]),
        defaults={
            "company": company,
            "connection": connection,
            "data_type_id": data["dataType"],
            "status": data["status"],
            "status_description": data.get("statusDescription") or "",
            "error_message": data.get("errorMessage") or "",
            "requested": parse_codat_datetime(data["requested"]),
            "completed": parse_codat_datetime(data.get("completed")),
            "progress": data.get("progress") or 0,
            "is_completed": bool(data.get("isCompleted")),
            "is_errored": bool(data.get("isErrored")),
        },
    )
    return operation
