"""Read side of the mirror: the company page (its summary header, its data types by product and
state, one timeline of what happened to it) and the dashboard's figures across every company.

Every query here is bounded by the company's catalogue (its products, Codat's 43 data types) or
by the timeline's limit, never by the company's history: a company with years of operations,
webhook events and reads costs the same queries, of the same size, as a new one.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby

from django.db import models
from django.db.models import Case, Count, Exists, Min, OuterRef, Q, Value, When
from django.db.models.fields.json import KT
from django.utils import timezone

from companies.models import (
    CONNECTION_STATUS_HELP,
    DATASET_ERROR_STATUSES,
    Company,
    Connection,
    ConnectionStatus,
    DatasetStatus,
    DataTypeStatus,
    ProductReadStatus,
    StatusHelp,
)
from consent.models import ConsentEvent
from consent.selectors import ProductCoverage, consent_coverage_of_company
from operations.models import Operation
from operations.selectors import (
    ProductFreshness,
    freshness_by_product,
    next_read_due,
    stale_reads,
)
from products.models import (
    HELD_STATUSES,
    CompanyProduct,
    CompanyProductStatus,
    ProductDataType,
)
from webhooks.models import WebhookEvent

# Codat leaves a data type it never read without a status, and no successful sync.
NEVER_SYNCED = Q(current_status="", last_successful_sync__isnull=True)

# A company has a handful of connections; more than this are listed on the connection list.
CONNECTIONS_SHOWN = 5


# -- the summary header ---------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionSummary:
    connection: Connection
    label: str
    help: StatusHelp


@dataclass(frozen=True)
class ProductSummary:
    """One product the company holds (or whose add failed), as the header shows it."""

    assignment: CompanyProduct
    # None while the assignment is not active: only active products are read on a schedule.
    freshness: ProductFreshness | None
    # Data types the product has not read yet (a product just added has read none).
    not_read: int
    coverage: ProductCoverage
    # When the product's schedule next reads the data type it read longest ago; None without
    # a schedule or before the product is active.
    next_read: datetime | None

    @property
    def product(self):
        return self.assignment.product

    @property
    def next_read_overdue(self) -> bool:
        return self.next_read is not None and self.next_read <= timezone.now()


@dataclass(frozen=True)
class CompanySummary:
    connections: list[ConnectionSummary]
    more_connections: bool
    products: list[ProductSummary]
    # The product whose scheduled read comes first (or is most overdue); None without any.
    next_read: ProductSummary | None
    # The company's connection status in one label: its best connection's.
    connection_status: str
    connection_help: StatusHelp | None


# The connection that says most about whether data flows: a linked one first.
_CONNECTION_RANK = (
    ConnectionStatus.LINKED,
    ConnectionStatus.PENDING_AUTH,
    ConnectionStatus.DEAUTHORIZED,
    ConnectionStatus.UNLINKED,
)


def company_summary(*, company: Company, now: datetime | None = None) -> CompanySummary:
    """The header of the company page: its connections, each product it holds with freshness,
    consent and next scheduled read. A fixed number of queries (nine), whatever the company's
    history."""
    now = now or timezone.now()
    connections = list(
        Connection.objects.filter(company=company, codat_deleted_at__isnull=True)
        .annotate(
            rank=Case(
                *(When(status=status, then=Value(i)) for i, status in enumerate(_CONNECTION_RANK)),
                output_field=models.IntegerField(),
            )
        )
        .order_by("rank", "-last_sync", "pk")[: CONNECTIONS_SHOWN + 1]
    )
    assignments = list(
        CompanyProduct.objects.filter(company=company)
        .exclude(status=CompanyProductStatus.REMOVED)
        .select_related("product")
        .order_by("product__name", "pk")
    )
    freshness = {item.product_id: item for item in freshness_by_product(company=company, now=now)}
    coverage = consent_coverage_of_company(
        company=company, products=[assignment.product for assignment in assignments], now=now
    )
    # The product's next read is due one schedule period after the data type it read longest
    # ago: `next_read_due` grows with its `after`, so the earliest `due_from` gives it.
    reads = {
        product_id: (earliest, not_read)
        for product_id, earliest, not_read in ProductReadStatus.objects.filter(
            assignment__company=company, assignment__status=CompanyProductStatus.ACTIVE
        )
        .order_by()
        .values("product_id")
        .annotate(earliest=Min("due_from"), not_read=Count("pk", filter=Q(last_status="")))
        .values_list("product_id", "earliest", "not_read")
    }
    products = []
    for assignment in assignments:
        product = assignment.product
        earliest, not_read = reads.get(product.pk, (None, 0))
        products.append(
            ProductSummary(
                assignment=assignment,
                freshness=freshness.get(product.pk),
                not_read=not_read,
                coverage=coverage[product.pk],
                next_read=next_read_due(
                    schedule_kind=product.schedule_kind,
                    schedule_time=product.schedule_time,
                    after=earliest,
                )
                if earliest is not None
                else None,
            )
        )
    scheduled = [item for item in products if item.next_read is not None]
    best = connections[0] if connections else None
    return CompanySummary(
        connections=[
            ConnectionSummary(
                connection=connection,
                label=ConnectionStatus(connection.status).label,
                help=CONNECTION_STATUS_HELP[connection.status],
            )
            for connection in connections[:CONNECTIONS_SHOWN]
        ],
        more_connections=len(connections) > CONNECTIONS_SHOWN,
        products=products,
        next_read=min(scheduled, key=lambda item: item.next_read) if scheduled else None,
        connection_status=ConnectionStatus(best.status).label if best else "",
        connection_help=CONNECTION_STATUS_HELP[best.status] if best else None,
    )


# -- data types by product and state --------------------------------------------------------


class ReadState(models.TextChoices):
    """How one product's reads of one data type stand; the groups of the company page, in
    the order it shows them (what needs a look first)."""

    FAILING = "failing", "Failing"
    STALE = "stale", "Stale"
    OTHER = "other", "Other status"
    READ = "read", "Read"
    NOT_READ = "not_read", "Not read yet"


_STATE_ORDER = tuple(ReadState)


def _state_case(*whens: When) -> Case:
    return Case(*whens, default=Value(ReadState.OTHER), output_field=models.CharField())


@dataclass(frozen=True)
class StateGroup:
    state: ReadState
    rows: list

    @property
    def folded(self) -> bool:
        """Never-read data types are many and say little: the page folds them away."""
        return self.state == ReadState.NOT_READ


@dataclass(frozen=True)
class ProductDataTypes:
    product: object
    groups: list[StateGroup]


@dataclass(frozen=True)
class OtherDataTypes:
    """The company's data types that none of its products holds (read through client-level
    sync settings, or before a product was removed)."""

    groups: list[StateGroup]
    never_synced: int


def _grouped(rows, state_of) -> list[StateGroup]:
    by_state: dict[str, list] = {}
    for row in rows:
        by_state.setdefault(state_of(row), []).append(row)
    return [
        StateGroup(state=state, rows=by_state[state]) for state in _STATE_ORDER if state in by_state
    ]


def company_data_types(
    *, company: Company, now: datetime | None = None
) -> tuple[list[ProductDataTypes], OtherDataTypes]:
    """Each product the company holds with its data types grouped by how the product's reads
    of them stand (failing, stale, read, not read yet), and the company's other data types
    grouped by Codat's status. Each row's state is worked out in the database, with the same
    stale rule as the stale-reads page (`operations.selectors.stale_reads`). Three queries."""
    now = now or timezone.now()
    stale = stale_reads(now=now).filter(pk=OuterRef("pk"))
    product_rows = (
        ProductReadStatus.objects.filter(
            assignment__company=company, assignment__status__in=HELD_STATUSES
        )
        .annotate(
            state=_state_case(
                When(last_status__in=DATASET_ERROR_STATUSES, then=Value(ReadState.FAILING)),
                When(Exists(stale), then=Value(ReadState.STALE)),
                When(last_status="", then=Value(ReadState.NOT_READ)),
                When(last_status=DatasetStatus.COMPLETE, then=Value(ReadState.READ)),
            )
        )
        .select_related("product", "data_type")
        .order_by("product__name", "product_id", "data_type__name")
    )
    by_product = [
        ProductDataTypes(product=rows[0].product, groups=_grouped(rows, lambda row: row.state))
        for _, grouped in groupby(product_rows, key=lambda row: row.product_id)
        for rows in [list(grouped)]
    ]
    held_types = ProductDataType.objects.filter(
        product__assignments__company=company,
        product__assignments__status__in=HELD_STATUSES,
    ).values("data_type_id")
    other_rows = list(
        DataTypeStatus.objects.filter(company=company)
        .exclude(data_type__in=held_types)
        .annotate(
            state=_state_case(
                When(current_status__in=DATASET_ERROR_STATUSES, then=Value(ReadState.FAILING)),
                When(NEVER_SYNCED, then=Value(ReadState.NOT_READ)),
                When(current_status=DatasetStatus.COMPLETE, then=Value(ReadState.READ)),
            )
        )
        .select_related("data_type")
        .order_by("data_type__name")
    )
    shown = [row for row in other_rows if row.state != ReadState.NOT_READ]
    return by_product, OtherDataTypes(
        groups=_grouped(shown, lambda row: row.state),
        never_synced=len(other_rows) - len(shown),
    )


# -- the timeline ---------------------------------------------------------------------------

TIMELINE_LIMIT = 50


class TimelineSource(models.TextChoices):
    OPERATION = "operation", "Operation"
    WEBHOOK = "webhook", "Webhook"
    CONSENT = "consent", "Consent"


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    source: TimelineSource
    # An Operation, a WebhookEvent or a ConsentEvent.
    row: object


@dataclass(frozen=True)
class Timeline:
    entries: list[TimelineEntry]
    # True when the company has older entries than those shown.
    truncated: bool
    limit: int


def company_timeline(*, company: Company, limit: int = TIMELINE_LIMIT) -> Timeline:
    """The company's operations, webhook events and consent events, newest first, at most
    `limit` of them, and whether older ones exist.

    One query per source, each the newest `limit + 1` rows down an index on (company, time):
    the newest `limit` of the three together are among them, and one more row than shown says
    whether there is more. Three queries whatever the company's history.
    """
    sources = (
        (
            TimelineSource.OPERATION,
            "created_at",
            Operation.objects.filter(company=company).select_related("product", "job"),
        ),
        (
            TimelineSource.WEBHOOK,
            "received_at",
            # The body and headers are on the event's own page; the timeline needs neither.
            WebhookEvent.objects.filter(company=company).defer("body", "headers"),
        ),
        (
            TimelineSource.CONSENT,
            "occurred_at",
            ConsentEvent.objects.filter(company=company).select_related("product"),
        ),
    )
    streams = [
        [
            TimelineEntry(at=getattr(row, field), source=source, row=row)
            for row in rows.order_by(f"-{field}", "-pk")[: limit + 1]
        ]
        for source, field, rows in sources
    ]
    merged = list(heapq.merge(*streams, key=lambda entry: entry.at, reverse=True))
    return Timeline(entries=merged[:limit], truncated=len(merged) > limit, limit=limit)


# -- the dashboard: the mirror across every company ----------------------------------------

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
    numbers. Three counting queries."""
    # The companies with no connection are all of them less those a connection names: two
    # index-only counts, where asking each company whether it has a connection took 0.07 s
    # at 100,000 companies.
    total = Company.objects.count()
    connected = Connection.objects.order_by().values("company").distinct().count()
    per_status = dict(
        Connection.objects.order_by()
        .values_list("status")
        .annotate(companies=Count("company", distinct=True))
    )
    unconnected = total - connected
    rows = [
        ConnectionStatusCount(status=status.value, label=status.label, companies=per_status[status])
        for status in CONNECTION_STATUS_ORDER
        if per_status.get(status)
    ]
    if unconnected:
        rows.append(ConnectionStatusCount(status="", label="No connection", companies=unconnected))
    return total, rows


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
            # The status counted rather than the id: data_type_status_failing answers alone.
            for status, count in failing.values_list("current_status").annotate(
                n=Count("current_status")
            )
        ),
        key=lambda row: (-row[2], row[1]),
    )
    reasons = (
        failing.annotate(message=KT("last_read_issues__0__message"))
        .values_list("current_status", "message")
        .annotate(n=Count("current_status"))
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
