"""Services that write the Codat mirror: every write to Company, Connection, DataTypeStatus,
ProductReadStatus and PullOperation rows goes through here.

Callers hand over Codat's own JSON (camelCase) and `observed_at`, when its facts were true at
Codat: a webhook event's generatedDate (the `*_from_event` services), or the moment an API answer
arrived (the `*_from_codat` services). `_observe` applies each fact unless the row has seen a
newer one (the rule itself: `companies.observations`).

Last-sync times are the exception that the rule allows: each one is the time of something that
happened (a read finished), so it only ever moves forward, and a fact too old to apply still
moves it forward when it knows of a later sync than the row does. That is how a read.completed
event and a data-status answer, observed in either order, both leave the sync they saw recorded.
"""

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from companies.codat_times import parse_codat_datetime, parse_optional_codat_datetime
from companies.models import (
    Company,
    Connection,
    DataTypeStatus,
    ProductReadStatus,
    PullOperation,
)
from companies.observations import is_older, locked_or_created

MirrorRow = TypeVar(
    "MirrorRow", Company, Connection, DataTypeStatus, ProductReadStatus, PullOperation
)


def _observe(
    model: type[MirrorRow],
    lookup: dict,
    *,
    observed_at: datetime,
    values: Callable[[MirrorRow | None], dict],
    from_event: bool,
    forward: Callable[[MirrorRow | None], dict] | None = None,
) -> tuple[MirrorRow, bool]:
    """Apply one observed fact to the row `lookup` names; the row, and whether it was applied.

    `values(row)` gives the fields the fact sets (`row` is None when the fact creates the row).
    The row is locked first, so two facts about it take turns and the second is compared with
    what the first wrote; a fact observed before the row's `observed_at` changes nothing. A
    new row is a plain INSERT, so a fact that loses the race to create it is compared with the
    winner's (see `locked_or_created`). With `from_event`, the fact came in a webhook event and
    the row's `last_event_at` records it too.

    `forward(row)` gives the fields the fact moves forward: times of things that happened, such
    as a last sync (see `_later_sync`), which an older fact may still know a later value of.
    They are applied whether or not the rest of the fact is.
    """
    stamps = {"observed_at": observed_at}
    if from_event:
        stamps["last_event_at"] = observed_at
    moved = forward or (lambda row: {})
    row, created = locked_or_created(
        model,
        lookup,
        lambda: model.objects.create(**lookup, **values(None), **moved(None), **stamps),
    )
    if created:
        return row, True
    if is_older(observed_at, row.observed_at):
        if later := moved(row):
            for name, value in later.items():
                setattr(row, name, value)
            row.save(update_fields=[*later, "mirrored_at"])
        return row, False
    changes = {**values(row), **moved(row), **stamps}
    for name, value in changes.items():
        setattr(row, name, value)
    row.save(update_fields=[*changes, "mirrored_at"])
    return row, True


def _text(value, limit: int) -> str:
    return str(value)[:limit] if value is not None else ""


def _uuid_or_none(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


def _later_sync(
    row: MirrorRow | None,
    field: str,
    synced_at: datetime | None,
    *,
    same_too: bool = False,
    **with_it,
) -> dict:
    """`field` set to `synced_at` (and the fields `with_it` alongside) when that sync is later
    than the one the row knows; with `same_too`, also when it is the same one (an answer that
    names a sync an event already recorded adds what the event did not know, such as its id).
    Nothing when it is earlier or unknown: a sync that happened stays recorded."""
    known = getattr(row, field) if row is not None else None
    if synced_at is None or (
        known is not None and (synced_at < known or (synced_at == known and not same_too))
    ):
        return {}
    return {field: synced_at, **with_it}


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
    last_sync = parse_optional_codat_datetime(data.get("lastSync"), field="lastSync")

    def values(row: Company | None) -> dict:
        return {
            **_company_details(codat_id, data, row),
            "codat_created_at": parse_optional_codat_datetime(data.get("created"), field="created"),
        }

    company, applied = _observe(
        Company,
        {"codat_id": codat_id},
        observed_at=observed_at,
        values=values,
        from_event=from_event,
        forward=lambda row: _later_sync(row, "last_sync", last_sync),
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
    last_sync = parse_optional_codat_datetime(data.get("lastSync"), field="lastSync")

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
        forward=lambda row: _later_sync(row, "last_sync", last_sync),
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
        last_successful_sync = parse_optional_codat_datetime(
            status.get("lastSuccessfulSync"), field="lastSuccessfulSync"
        )
        _observe(
            DataTypeStatus,
            {"company": company, "data_type_id": data_type},
            observed_at=observed_at,
            values=lambda row, status=status: {
                "current_status": status.get("currentStatus") or "",
                "latest_sync_id": _uuid_or_none(status.get("latestSyncId")),
            },
            from_event=False,
            # The same sync as a read event recorded still brings its id, which events lack.
            forward=lambda row, synced_at=last_successful_sync, status=status: _later_sync(
                row,
                "last_successful_sync",
                synced_at,
                same_too=True,
                latest_successful_sync_id=_uuid_or_none(status.get("latestSuccessfulSyncId")),
            ),
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

    A Complete entry is a successful sync at `observed_at` (Codat generates the event as the
    read finishes); it moves the last successful sync forward, and the id Codat gave the
    previous one no longer belongs to it (the event does not name the new sync's id).
    `records_modified` moves "records last changed" forward. Codat documents that the first
    read after a company's first link always says false; that read is when the records first
    arrived, so the first completed read of a data type counts as a change whatever the flag
    says. Both times are facts about the past, so an older event still moves them forward
    (never back) when the rest of it is not applied.
    """

    def records_changed_at(row: DataTypeStatus | None) -> dict:
        last_changed = row.records_last_modified_at if row else None
        changed = records_modified or (status == "Complete" and last_changed is None)
        if changed and (last_changed is None or last_changed < observed_at):
            return {"records_last_modified_at": observed_at}
        return {}

    def values(row: DataTypeStatus | None) -> dict:
        fields = {"last_read_issues": issues}
        if status:
            fields["current_status"] = status
        return fields

    def synced(row: DataTypeStatus | None) -> dict:
        if status != "Complete":
            return {}
        return _later_sync(row, "last_successful_sync", observed_at, latest_successful_sync_id=None)

    _, applied = _observe(
        DataTypeStatus,
        {"company": company, "data_type_id": data_type},
        observed_at=observed_at,
        values=values,
        from_event=True,
        forward=lambda row: {**records_changed_at(row), **synced(row)},
    )
    return applied


@transaction.atomic
def last_sync_mirror_from_read_event(
    *, company: Company, connection_codat_ids: set[uuid.UUID], synced_at: datetime
) -> None:
    """A read.completed event with Complete entries: the company and those of its connections
    synced at `synced_at`. Forward only; the rest of each row is left to connection and company
    facts, so this stamps no observation. A connection not mirrored yet is left to the import,
    which brings it with Codat's own lastSync."""
    not_later = Q(last_sync__isnull=True) | Q(last_sync__lt=synced_at)
    # One conditional UPDATE each: a concurrent writer's later time is re-checked under its
    # row lock, so the newest sync wins whatever the order.
    Connection.objects.filter(not_later, company=company, codat_id__in=connection_codat_ids).update(
        last_sync=synced_at, mirrored_at=timezone.now()
    )
    Company.objects.filter(not_later, pk=company.pk).update(
        last_sync=synced_at, mirrored_at=timezone.now()
    )


# --- per-product read statuses ------------------------------------------------------------------

# An assignment in one of these has its product's reads followed: Codat reads for a product from
# the moment it is added until it is removed (an add in flight may already see its first read).
_READ_FOLLOWED = ("pending_add", "active", "pending_removal")
_FOLLOW_CHUNK = 2_000


def product_reads_follow(assignments) -> None:
    """Keep a read-status row for every data type of each of `assignments` (a CompanyProduct
    queryset) that is held, and none for one that is not: called after assignments change
    status or a product's data types change.

    A new row counts its schedule from when its assignment became active; an assignment that
    is removed loses its rows, so adding the product again starts afresh. Runs in chunks, so a
    call over a whole book holds a bounded amount in memory.
    """
    from products.models import ProductDataType

    types_of: dict[int, set[str]] = {}
    rows = assignments.order_by().values_list("pk", "product_id", "status", "status_changed_at")
    chunk: list[tuple] = []
    for row in rows.iterator(chunk_size=_FOLLOW_CHUNK):
        chunk.append(row)
        if len(chunk) == _FOLLOW_CHUNK:
            _product_reads_follow_chunk(chunk, types_of, ProductDataType)
            chunk = []
    if chunk:
        _product_reads_follow_chunk(chunk, types_of, ProductDataType)


@transaction.atomic
def _product_reads_follow_chunk(chunk: list[tuple], types_of: dict, product_data_type) -> None:
    for product_id in {product_id for _, product_id, _, _ in chunk} - types_of.keys():
        types_of[product_id] = set(
            product_data_type.objects.filter(product_id=product_id).values_list(
                "data_type_id", flat=True
            )
        )
    held = [row for row in chunk if row[2] in _READ_FOLLOWED]
    ProductReadStatus.objects.filter(
        assignment_id__in=[pk for pk, _, status, _ in chunk if status not in _READ_FOLLOWED]
    ).delete()
    for product_id in {product_id for _, product_id, _, _ in held}:
        ProductReadStatus.objects.filter(
            assignment_id__in=[pk for pk, product, _, _ in held if product == product_id]
        ).exclude(data_type_id__in=types_of[product_id]).delete()
    ProductReadStatus.objects.bulk_create(
        [
            ProductReadStatus(
                assignment_id=pk, product_id=product_id, data_type_id=data_type, due_from=since
            )
            for pk, product_id, _, since in held
            for data_type in sorted(types_of[product_id])
        ],
        ignore_conflicts=True,
        batch_size=_FOLLOW_CHUNK,
    )


@transaction.atomic
def product_read_mirror_from_event(
    *,
    company: Company,
    product_identifier: str,
    data_type: str,
    status: str,
    issues: list,
    observed_at: datetime,
) -> bool:
    """One data type's entry of a `{product}.read.completed` event: how that product's read of
    it ended. Whether it was the newest fact; False too when the company does not hold the
    product (the portal follows reads only for products it assigns).

    A Complete entry is a successful read at `observed_at`: the product's schedule counts from
    it. Like every last-sync time, it moves forward even when the rest of an older event does not
    apply.
    """
    from products.models import CompanyProduct, ProductDataType

    assignment = (
        CompanyProduct.objects.filter(
            company=company, product__identifier=product_identifier, status__in=_READ_FOLLOWED
        )
        .only("pk", "product_id", "status_changed_at")
        .first()
    )
    if (
        assignment is None
        or not ProductDataType.objects.filter(
            product_id=assignment.product_id, data_type_id=data_type
        ).exists()
    ):
        return False

    def values(row: ProductReadStatus | None) -> dict:
        fields = {"last_read_issues": issues, "last_read_at": observed_at}
        if status:
            fields["last_status"] = status
        if row is None:
            fields["product_id"] = assignment.product_id
        return fields

    def forward(row: ProductReadStatus | None) -> dict:
        due_from = row.due_from if row is not None else assignment.status_changed_at
        if status != "Complete":
            return {} if row is not None else {"due_from": due_from}
        synced = _later_sync(row, "last_successful_read", observed_at)
        if synced or row is None:
            return {**synced, "due_from": max(due_from, observed_at)}
        return {}

    _, applied = _observe(
        ProductReadStatus,
        {"assignment_id": assignment.pk, "data_type_id": data_type},
        observed_at=observed_at,
        values=values,
        from_event=True,
        forward=forward,
    )
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


# --- GDPR erasure (companies/erasure.py runs it) ------------------------------------------------

ERASED_COMPANY_NAME = "Erased company"


@transaction.atomic
def company_mirror_erase(*, company: Company) -> dict[str, int]:
    """The mirror's copies of an erased company's data go (Codat has deleted the company).

    The company row itself stays while consent evidence kept under retention points at it, with
    nothing left on it but its Codat id: no name, description, tags or link.
    `company_row_delete` removes it once the retention run has deleted the last evidence.
    """
    counts = {
        "product read statuses": ProductReadStatus.objects.filter(
            assignment__company=company
        ).delete()[0],
        "reads": PullOperation.objects.filter(company=company).delete()[0],
        "data-type statuses": DataTypeStatus.objects.filter(company=company).delete()[0],
        "connections": Connection.objects.filter(company=company).delete()[0],
    }
    now = timezone.now()
    Company.objects.filter(pk=company.pk).update(
        name=ERASED_COMPANY_NAME,
        description="",
        tags={},
        redirect="",
        last_sync=None,
        codat_deleted_at=company.codat_deleted_at or now,
        observed_at=now,
    )
    return counts


@transaction.atomic
def company_row_delete(*, company: Company) -> None:
    """The emptied row of an erased company, once no consent evidence points at it any more."""
    Company.objects.filter(pk=company.pk).delete()
