"""Current consent, derived from the append-only event log (never stored as a flag)."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from consent.models import ConsentAction, ConsentEvent, ConsentText
from products.models import Product, ProductDataType


class ConsentState:
    NONE = "none"
    ACTIVE = "active"
    # Granted, but older than the reconfirmation policy allows (or an expiry was recorded).
    RECONFIRM_NEEDED = "reconfirm_needed"
    WITHDRAWN = "withdrawn"
    DECLINED = "declined"


@dataclass(frozen=True)
class ProductConsent:
    """The consent a company has for one product, as the event log says now."""

    product_id: int
    state: str = ConsentState.NONE
    data_types: frozenset[str] = frozenset()
    granted_at: datetime | None = None
    # The last grant or reconfirmation: what the reconfirmation policy counts from.
    confirmed_at: datetime | None = None
    last_event: ConsentEvent | None = field(default=None, compare=False)

    @property
    def is_active(self) -> bool:
        return self.state == ConsentState.ACTIVE

    @property
    def can_withdraw(self) -> bool:
        return self.state in (ConsentState.ACTIVE, ConsentState.RECONFIRM_NEEDED)

    @property
    def can_reconfirm(self) -> bool:
        return self.state in (ConsentState.ACTIVE, ConsentState.RECONFIRM_NEEDED)


def reconfirm_deadline(confirmed_at: datetime) -> datetime | None:
    days = settings.CONSENT_RECONFIRM_AFTER_DAYS
    if not days:
        return None
    return confirmed_at + timedelta(days=days)


def _replay(product_id: int, events, now: datetime) -> ProductConsent:
    """Fold one product's events, oldest first, into its current consent."""
    current = ProductConsent(product_id=product_id)
    for event in events:
        if event.action == ConsentAction.GRANT:
            current = ProductConsent(
                product_id=product_id,
                state=ConsentState.ACTIVE,
                data_types=frozenset(event.data_types),
                granted_at=event.occurred_at,
                confirmed_at=event.occurred_at,
                last_event=event,
            )
        elif event.action == ConsentAction.RECONFIRM and current.can_reconfirm:
            current = ProductConsent(
                product_id=product_id,
                state=ConsentState.ACTIVE,
                data_types=current.data_types,
                granted_at=current.granted_at,
                confirmed_at=event.occurred_at,
                last_event=event,
            )
        elif event.action == ConsentAction.EXPIRE and current.can_reconfirm:
            current = ProductConsent(
                product_id=product_id,
                state=ConsentState.RECONFIRM_NEEDED,
                data_types=current.data_types,
                granted_at=current.granted_at,
                confirmed_at=current.confirmed_at,
                last_event=event,
            )
        elif event.action in (ConsentAction.WITHDRAW, ConsentAction.DECLINE):
            current = ProductConsent(
                product_id=product_id,
                state=(
                    ConsentState.WITHDRAWN
                    if event.action == ConsentAction.WITHDRAW
                    else ConsentState.DECLINED
                ),
                last_event=event,
            )
    if current.state == ConsentState.ACTIVE:
        deadline = reconfirm_deadline(current.confirmed_at)
        if deadline is not None and now >= deadline:
            current = ProductConsent(
                product_id=product_id,
                state=ConsentState.RECONFIRM_NEEDED,
                data_types=current.data_types,
                granted_at=current.granted_at,
                confirmed_at=current.confirmed_at,
                last_event=current.last_event,
            )
    return current


def consent_states(*, company, now: datetime | None = None) -> dict[int, ProductConsent]:
    """Every product the company ever had a consent event for, by product id. One query."""
    now = now or timezone.now()
    by_product: dict[int, list[ConsentEvent]] = {}
    events = ConsentEvent.objects.filter(company=company).order_by("occurred_at", "id")
    for event in events:
        by_product.setdefault(event.product_id, []).append(event)
    return {
        product_id: _replay(product_id, product_events, now)
        for product_id, product_events in by_product.items()
    }


def consent_state(*, company, product, now: datetime | None = None) -> ProductConsent:
    now = now or timezone.now()
    events = ConsentEvent.objects.filter(company=company, product=product).order_by(
        "occurred_at", "id"
    )
    return _replay(product.pk, events, now)


def required_data_types(product) -> frozenset[str]:
    return frozenset(
        ProductDataType.objects.filter(product=product, is_optional=False).values_list(
            "data_type_id", flat=True
        )
    )


def consent_covers(company, product, *, now: datetime | None = None) -> bool:
    """True when active consent covers every required data type the product has today.

    A product that gained a required data type since the grant is not covered: the new data
    type needs its own consent. Optional data types the SMB left out are not needed here;
    `consented_data_types` tells a refresh which of them it may read.
    """
    current = consent_state(company=company, product=product, now=now)
    return current.is_active and required_data_types(product) <= current.data_types


def consented_data_types(company, product, *, now: datetime | None = None) -> frozenset[str]:
    """The product's data types the company has active consent for (empty if none)."""
    current = consent_state(company=company, product=product, now=now)
    if not current.is_active:
        return frozenset()
    return current.data_types


@dataclass(frozen=True)
class MatrixCell:
    data_type: str
    name: str
    required: bool
    optional: bool
    consented: bool

    @property
    def missing(self) -> bool:
        return self.required and not self.consented


@dataclass(frozen=True)
class MatrixRow:
    product: Product
    consent: ProductConsent
    cells: tuple[MatrixCell, ...]
    covered: bool


def consent_matrix(*, company, products=None, now: datetime | None = None):
    """Products x data types for one company: required, optional, consented, missing.

    Returns (data type identifiers used by any row, rows). Three queries whatever the size.
    """
    now = now or timezone.now()
    states = consent_states(company=company, now=now)
    if products is None:
        product_ids = set(states) | set(
            company.product_assignments.values_list("product_id", flat=True)
        )
        products = Product.objects.filter(pk__in=product_ids)
    if not isinstance(products, models.QuerySet):
        products = Product.objects.filter(pk__in=[product.pk for product in products])
    products = list(products.prefetch_related("product_data_types__data_type"))
    columns: set[str] = set()
    rows = []
    for product in products:
        consent = states.get(product.pk, ProductConsent(product_id=product.pk))
        granted = consent.data_types if consent.is_active else frozenset()
        cells = []
        for link in product.product_data_types.all():
            columns.add(link.data_type_id)
            cells.append(
                MatrixCell(
                    data_type=link.data_type_id,
                    name=link.data_type.name,
                    required=not link.is_optional,
                    optional=link.is_optional,
                    consented=link.data_type_id in granted,
                )
            )
        covered = consent.is_active and all(not cell.missing for cell in cells)
        rows.append(
            MatrixRow(product=product, consent=consent, cells=tuple(cells), covered=covered)
        )
    return sorted(columns), rows


def consent_receipt_events(*, company, receipt_id):
    return list(
        ConsentEvent.objects.filter(company=company, receipt_id=receipt_id)
        .select_related("product", "text", "company")
        .order_by("id")
    )


def consent_text_latest(*, product) -> ConsentText | None:
    return ConsentText.objects.filter(product=product).order_by("-version").first()


@dataclass(frozen=True)
class ReceiptSummary:
    receipt_id: object
    occurred_at: datetime
    events: tuple[ConsentEvent, ...]


def consent_receipts_for_company(*, company, limit: int = 50) -> list[ReceiptSummary]:
    """The company's most recent decisions, newest first, one entry per receipt."""
    grouped: dict[object, list[ConsentEvent]] = {}
    events = (
        ConsentEvent.objects.filter(company=company)
        .select_related("product")
        .order_by("-occurred_at", "-id")[: limit * 4]
    )
    for event in events:
        grouped.setdefault(event.receipt_id, []).append(event)
    return [
        ReceiptSummary(receipt_id=key, occurred_at=items[0].occurred_at, events=tuple(items))
        for key, items in list(grouped.items())[:limit]
    ]


def companies_lacking_consent(*, products) -> list:
    """The companies whose consent does not cover every data type of at least one of
    `products`: whom a campaign for them asks when no companies are chosen."""
    # Imported here: enforcement builds on this module.
    from companies.models import Company
    from consent.enforcement import companies_refused_for_consent

    ids = set(Company.objects.values_list("pk", flat=True))
    lacking = set()
    for product in products:
        lacking |= set(companies_refused_for_consent(company_ids=ids, product=product))
    return list(Company.objects.filter(pk__in=lacking))


def companies_refused_for_consent(*, company_ids, product=None, data_types=None) -> dict[int, str]:
    # Interim, until consent/enforcement.py folds into this module.
    from consent.enforcement import companies_refused_for_consent as refused

    return refused(company_ids=company_ids, product=product, data_types=data_types)
