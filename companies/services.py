"""Services that write the Codat mirror: every write to Company, Connection, DataTypeStatus and
PullOperation rows goes through here.

Callers hand over Codat's own JSON (camelCase) and `observed_at`, when its facts were true at
Codat: a webhook event's generatedDate (the `*_from_event` services), or the moment an API answer
arrived (the `*_from_codat` services). `_observe` applies each fact unless the row has seen a
newer one (the rule itself: `companies.observations`).
"""

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from django.db import transaction
from django.utils import timezone

from companies.codat_times import parse_codat_datetime, parse_optional_codat_datetime
from companies.models import Company, Connection, DataTypeStatus, PullOperation
from companies.observations import is_older, locked_or_created

MirrorRow = TypeVar("MirrorRow", Company, Connection, DataTypeStatus, PullOperation)


def _observe(
    model: type[MirrorRow],
    lookup: dict,
    *,
    observed_at: datetime,
    values: Callable[[MirrorRow | None], dict],
    from_event: bool,
) -> tuple[MirrorRow, bool]:
    """Apply one observed fact to the row `lookup` names; the row, and whether it was applied.

    `values(row)` gives the fields the fact sets (`row` is None when the fact creates the row).
    The row is locked first, so two facts about it take turns and the second is compared with
    what the first wrote; a fact observed before the row's `observed_at` changes nothing. A
    new row is a plain INSERT, so a fact that loses the race to create it is compared with the
    winner's (see `locked_or_created`). With `from_event`, the fact came in a webhook event and
    the row's `last_event_at` records it too.
    """
    stamps = {"observed_at": observed_at}
    if from_event:
        stamps["last_event_at"] = observed_at
    row, created = locked_or_created(
        model, lookup, lambda: model.objects.create(**lookup, **values(None), **stamps)
    )
    if created:
        return row, True
    if is_older(observed_at, row.observed_at):
        return row, False
    changes = {**values(row), **stamps}
    for name, value in changes.items():
        setattr(row, name, value)
    row.save(update_fields=[*changes, "mirrored_at"])
    return row, True


def _text(value, limit: int) -> str:
    return str(value)[:limit] if value is not None else ""


def _uuid_or_none(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


# --- companies -----------------------------------------------------------------------------------


def _company_details(codat_id: uuid.UUID, data: dict, row: Company | None) -> dict:
    """A company's name, description, tags and Hosted Link URL from Codat's JSON; a name or URL
    it leaves out keeps the row's (events may carry only a reference)."""
    return {
        "name": _text(data.get("name"), 255) or (row.name if row else str(codat_id)),
        "description": _text(data.get("description"), 10_000),
        "tags": data["tags"] if isinstance(data.get("tags"), dict) else {},
        # The Hosted Link URL Codat gives every company has this fixed form.
        "redirect": data.get("redirect")
        or (row.redirect if row else f"https://link.codat.io/company/{codat_id}"),
    }


def _company_mirror(*, data: dict, observed_at: datetime, from_event: bool) -> tuple[Company, bool]:
    codat_id = uuid.UUID(str(data["id"]))

    def values(row: Company | None) -> dict:
        return {
            **_company_details(codat_id, data, row),
            "codat_created_at": parse_optional_codat_datetime(data.get("created"), field="created"),
            "last_sync": parse_optional_codat_datetime(data.get("lastSync"), field="lastSync"),
        }

    company, applied = _observe(
        Company,
        {"codat_id": codat_id},
        observed_at=observed_at,
        values=values,
        from_event=from_event,
    )
    if applied and "products" in data:
        from products.services import company_products_mirror_from_codat

        company_products_mirror_from_codat(company=company, product_identifiers=data["products"])
    # Each connection keeps its own observation time, so it is offered even when the company
    # row has seen newer facts.
    for connection_data in data.get("dataConnections") or ():
        _connection_mirror(
            company=company, data=connection_data, observed_at=observed_at, from_event=from_event
        )
    return company, applied


@transaction.atomic
def company_mirror_from_codat(*, data: dict, observed_at: datetime | None = None) -> Company:
    """Mirror a Codat Company as an API answer gave it (observed now, unless told); its
    `products` become assignments, its `dataConnections` connections."""
    company, _ = _company_mirror(
        data=data, observed_at=observed_at or timezone.now(), from_event=False
    )
    return company


@transaction.atomic
def company_mirror_from_event(*, data: dict, observed_at: datetime) -> bool:
    """Mirror the company a company.created event carries; whether it was the newest fact."""
    _, applied = _company_mirror(data=data, observed_at=observed_at, from_event=True)
    return applied


def company_mirror_from_reference(*, codat_id: uuid.UUID, reference: dict) -> Company:
    """The mirrored company an event refers to, created from the reference if it is new.

    Not locked, so events about one company's connections and reads run side by side; and the
    new row records no observation, so whatever Codat says of the company later still applies.
    """

    def create() -> Company:
        return Company.objects.create(
            codat_id=codat_id, **_company_details(codat_id, reference, None)
        )

    company, _ = locked_or_created(Company, {"codat_id": codat_id}, create, lock=False)
    return company


@transaction.atomic
def company_products_mirror_from_event(
    *, codat_id: uuid.UUID, data: dict, product_identifiers: list[str], observed_at: datetime
) -> bool:
    """company.product.added and .removed: `product_identifiers` is the full list after the
    change. Whether it was the newest fact about the company."""

    def values(row: Company | None) -> dict:
        if row is None:
            return _company_details(codat_id, data, None)
        fields = {"name": _text(data.get("name"), 255) or row.name}
        if "description" in data:
            fields["description"] = _text(data.get("description"), 10_000)
        return fields

    company, applied = _observe(
        Company, {"codat_id": codat_id}, observed_at=observed_at, values=values, from_event=True
    )
    if applied:
        from products.services import company_products_mirror_from_codat

        company_products_mirror_from_codat(company=company, product_identifiers=product_identifiers)
    return applied


@transaction.atomic
def company_deletion_mirror_from_event(
    *, codat_id: uuid.UUID, data: dict, observed_at: datetime
) -> bool:
    """company.deleted: the row stays as a tombstone (consent evidence points at it, and a late,
    older event must find it rather than re-create the company). Whether it was newest."""

    def values(row: Company | None) -> dict:
        details = _company_details(codat_id, data, None) if row is None else {}
        return {**details, "codat_deleted_at": observed_at}

    company, applied = _observe(
        Company, {"codat_id": codat_id}, observed_at=observed_at, values=values, from_event=True
    )
    if applied:
        # Codat deletes a company's connections with it.
        Connection.objects.filter(company=company, codat_deleted_at__isnull=True).update(
            codat_deleted_at=observed_at
        )
    return applied


# --- connections ---------------------------------------------------------------------------------


def _connection_mirror(
    *, company: Company, data: dict, observed_at: datetime, from_event: bool, deleted: bool = False
) -> tuple[Connection, bool]:
    def values(row: Connection | None) -> dict:
        fields = {
            "company": company,
            "integration_id": data.get("integrationId") or "",
            "integration_key": data.get("integrationKey") or "",
            "source_id": data.get("sourceId") or "",
            "platform_name": data.get("platformName") or "",
            "source_type": data.get("sourceType") or "Unknown",
            "status": data["status"],
            "link_url": data.get("linkUrl") or "",
            "last_sync": parse_optional_codat_datetime(data.get("lastSync"), field="lastSync"),
            "codat_created_at": parse_optional_codat_datetime(data.get("created"), field="created"),
            "errors": data.get("dataConnectionErrors") or [],
        }
        if deleted:
            fields["codat_deleted_at"] = observed_at
        return fields

    return _observe(
        Connection,
        {"codat_id": uuid.UUID(str(data["id"]))},
        observed_at=observed_at,
        values=values,
        from_event=from_event,
    )


@transaction.atomic
def connection_mirror_from_codat(
    *, company: Company, data: dict, observed_at: datetime
) -> Connection:
    """Mirror a connection as an API answer gave it."""
    connection, _ = _connection_mirror(
        company=company, data=data, observed_at=observed_at, from_event=False
    )
    return connection


@transaction.atomic
def connection_mirror_from_event(
    *, company: Company, data: dict, observed_at: datetime, deleted: bool = False
) -> bool:
    """connection.*: the full connection as it is after the transition (`deleted` for
    connection.deleted, which keeps the row as a tombstone). Whether it was the newest fact."""
    _, applied = _connection_mirror(
        company=company, data=data, observed_at=observed_at, from_event=True, deleted=deleted
    )
    return applied


# --- data-type statuses --------------------------------------------------------------------------


@transaction.atomic
def data_status_mirror_from_codat(
    *, company: Company, data_statuses: dict, observed_at: datetime
) -> None:
    """Apply Codat's dataStatus answer: an object keyed by data type."""
    for data_type, status in data_statuses.items():
        _observe(
            DataTypeStatus,
            {"company": company, "data_type_id": data_type},
            observed_at=observed_at,
            values=lambda row, status=status: {
                "current_status": status.get("currentStatus") or "",
                "last_successful_sync": parse_optional_codat_datetime(
                    status.get("lastSuccessfulSync"), field="lastSuccessfulSync"
                ),
                "latest_sync_id": _uuid_or_none(status.get("latestSyncId")),
                "latest_successful_sync_id": _uuid_or_none(status.get("latestSuccessfulSyncId")),
            },
            from_event=False,
        )


@transaction.atomic
def data_type_status_mirror_from_read_event(
    *,
    company: Company,
    data_type: str,
    status: str,
    issues: list,
    records_modified: bool,
    observed_at: datetime,
) -> bool:
    """One data type's entry of a read.completed event; whether it was the newest fact.

    `records_modified` moves "records last changed" forward. Codat documents that the first
    read after a company's first link always says false; that read is when the records first
    arrived, so the first completed read of a data type counts as a change whatever the flag
    says. A change of records is a fact about the past, so an older event still moves that one
    field forward (never back) when the rest of it is not applied.
    """

    def records_changed_at(row: DataTypeStatus | None) -> dict:
        last_changed = row.records_last_modified_at if row else None
        changed = records_modified or (status == "Complete" and last_changed is None)
        if changed and (last_changed is None or last_changed < observed_at):
            return {"records_last_modified_at": observed_at}
        return {}

    def values(row: DataTypeStatus | None) -> dict:
        fields = {"last_read_issues": issues, **records_changed_at(row)}
        if status:
            fields["current_status"] = status
        return fields

    row, applied = _observe(
        DataTypeStatus,
        {"company": company, "data_type_id": data_type},
        observed_at=observed_at,
        values=values,
        from_event=True,
    )
    if not applied and (records := records_changed_at(row)):
        row.records_last_modified_at = records["records_last_modified_at"]
        row.save(update_fields=["records_last_modified_at", "mirrored_at"])
    return applied


# --- pull operations -----------------------------------------------------------------------------


@transaction.atomic
def pull_operation_mirror_from_codat(
    *, company: Company, data: dict, observed_at: datetime | None = None
) -> PullOperation:
    """Mirror one read (dataset) as an API answer gave it (observed now, unless told)."""
    connection_id = _uuid_or_none(data.get("connectionId"))
    connection = (
        Connection.objects.filter(codat_id=connection_id).first() if connection_id else None
    )

    def values(row: PullOperation | None) -> dict:
        return {
            "company": company,
            "connection": connection,
            "data_type_id": data["dataType"],
            "status": data["status"],
            "status_description": data.get("statusDescription") or "",
            "error_message": data.get("errorMessage") or "",
            "requested": parse_codat_datetime(data.get("requested"), field="requested"),
            "completed": parse_optional_codat_datetime(data.get("completed"), field="completed"),
            "progress": data.get("progress") or 0,
            "is_completed": bool(data.get("isCompleted")),
            "is_errored": bool(data.get("isErrored")),
        }

    operation, _ = _observe(
        PullOperation,
        {"codat_id": uuid.UUID(str(data["id"]))},
        observed_at=observed_at or timezone.now(),
        values=values,
        from_event=False,
    )
    return operation
