"""Read-side questions about the mirror across many companies (the dashboard's figures)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef
from django.db.models.fields.json import KT

from companies.models import (
    DATASET_ERROR_STATUSES,
    Company,
    Connection,
    ConnectionStatus,
    DatasetStatus,
    DataTypeStatus,
)

# Working connections first, then those waiting on the customer, then the lost ones.
CONNECTION_STATUS_ORDER = (
    ConnectionStatus.LINKED,
    ConnectionStatus.PENDING_AUTH,
    ConnectionStatus.DEAUTHORIZED,
    ConnectionStatus.UNLINKED,
)
assert set(CONNECTION_STATUS_ORDER) == set(ConnectionStatus)


@dataclass(frozen=True)
class ConnectionStatusCount:
    status: str  # a ConnectionStatus value; "" for companies without any connection
    label: str
    companies: int


def companies_by_connection_status() -> tuple[int, list[ConnectionStatusCount]]:
    """Every company, and per connection status how many companies have a connection in it
    (a company with two connections counts under each of their statuses), then the companies
    with no connection at all: the company list's connection-status filter gives the same
    numbers. Two aggregate queries."""
    totals = Company.objects.aggregate(
        total=Count("pk"),
        unconnected=Count("pk", filter=~Exists(Connection.objects.filter(company=OuterRef("pk")))),
    )
    per_status = dict(
        Connection.objects.order_by()
        .values_list("status")
        .annotate(companies=Count("company", distinct=True))
    )
    unconnected = totals["unconnected"]
    rows = [
        ConnectionStatusCount(status=status.value, label=status.label, companies=per_status[status])
        for status in CONNECTION_STATUS_ORDER
        if per_status.get(status)
    ]
    if unconnected:
        rows.append(ConnectionStatusCount(status="", label="No connection", companies=unconnected))
    return totals["total"], rows


@dataclass(frozen=True)
class FailureReason:
    status: str
    label: str
    message: str  # the first issue Codat reported with the read; "" when it gave none
    count: int


@dataclass(frozen=True)
class FailingReads:
    total: int
    by_status: list[tuple[str, str, int]]  # (status, label, data types in it), most first
    top_reasons: list[FailureReason]


def failing_reads_by_reason(*, top: int = 5) -> FailingReads:
    """Data types whose current status at Codat is an error (DATASET_ERROR_STATUSES), per
    status and the `top` commonest (status, first issue message) pairs. Two aggregate queries:
    the messages are grouped in the database, whatever the number of companies."""
    failing = DataTypeStatus.objects.filter(current_status__in=DATASET_ERROR_STATUSES).order_by()
    by_status = sorted(
        (
            (status, DatasetStatus(status).label, count)
            for status, count in failing.values_list("current_status").annotate(n=Count("pk"))
        ),
        key=lambda row: (-row[2], row[1]),
    )
    reasons = (
        failing.annotate(message=KT("last_read_issues__0__message"))
        .values_list("current_status", "message")
        .annotate(n=Count("pk"))
        .order_by("-n", "current_status", "message")[:top]
    )
    return FailingReads(
        total=sum(row[2] for row in by_status),
        by_status=by_status,
        top_reasons=[
            FailureReason(
                status=status, label=DatasetStatus(status).label, message=message or "", count=n
            )
            for status, message, n in reasons
        ],
    )
