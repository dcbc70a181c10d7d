"""What consent covers: the one place that answers it, for the pages, the admin and the gate
of operations (`companies_refused_for_consent`).

Current consent is read from `CurrentConsent`, which consent/services.py keeps in step with the
append-only event log (the evidence) as each event is written; `_replay` is the fold of the log
that defines what the table holds, and the clock (the reconfirmation policy) is applied on
reading.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import BooleanField, Count, Exists, F, Func, OuterRef, Q, Subquery
from django.utils import timezone

from companies.models import Company
from consent.models import (
    ConsentAction,
    ConsentEvent,
    ConsentRequest,
    ConsentText,
    CurrentConsent,
)
from products.models import HELD_STATUSES, CompanyProduct, Product, ProductDataType


class ConsentState(models.TextChoices):
    """A company's consent for one product now, derived from the event log."""

    NONE = "none", "No consent"
    ACTIVE = "active", "Active"
    # Granted, but older than the reconfirmation policy allows (or an expiry was recorded).
    RECONFIRM_NEEDED = "reconfirm_needed", "Reconfirmation needed"
    WITHDRAWN = "withdrawn", "Withdrawn"
    DECLINED = "declined", "Declined"


@dataclass(frozen=True)
class ProductConsent:
    """The consent a company has for one product, as the event log says now."""

    product_id: int
    state: ConsentState = ConsentState.NONE
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


def consent_after_event(current: ProductConsent, event) -> ProductConsent:
    """One event's step of the fold: the consent `current` becomes once `event` (the next in
    time order, then id) is recorded. The clock is not applied here (`_by_clock` is): this is
    what `CurrentConsent` stores. `event` needs `action`, `data_types` and `occurred_at`."""
    product_id = current.product_id
    if event.action == ConsentAction.GRANT:
        return ProductConsent(
            product_id=product_id,
            state=ConsentState.ACTIVE,
            data_types=frozenset(event.data_types),
            granted_at=event.occurred_at,
            confirmed_at=event.occurred_at,
            last_event=event,
        )
    if event.action == ConsentAction.RECONFIRM and current.can_reconfirm:
        return ProductConsent(
            product_id=product_id,
            state=ConsentState.ACTIVE,
            data_types=current.data_types,
            granted_at=current.granted_at,
            confirmed_at=event.occurred_at,
            last_event=event,
        )
    if event.action == ConsentAction.EXPIRE and current.can_reconfirm:
        return ProductConsent(
            product_id=product_id,
            state=ConsentState.RECONFIRM_NEEDED,
            data_types=current.data_types,
            granted_at=current.granted_at,
            confirmed_at=current.confirmed_at,
            last_event=event,
        )
    if event.action in (ConsentAction.WITHDRAW, ConsentAction.DECLINE):
        return ProductConsent(
            product_id=product_id,
            state=(
                ConsentState.WITHDRAWN
                if event.action == ConsentAction.WITHDRAW
                else ConsentState.DECLINED
            ),
            last_event=event,
        )
    return current


def _by_clock(current: ProductConsent, now: datetime) -> ProductConsent:
    """Active consent whose last confirmation is older than the reconfirmation policy allows
    needs reconfirming, whether or not the reconciler has recorded the expiry yet."""
    if current.state == ConsentState.ACTIVE:
        deadline = reconfirm_deadline(current.confirmed_at)
        if deadline is not None and now >= deadline:
            return ProductConsent(
                product_id=current.product_id,
                state=ConsentState.RECONFIRM_NEEDED,
                data_types=current.data_types,
                granted_at=current.granted_at,
                confirmed_at=current.confirmed_at,
                last_event=current.last_event,
            )
    return current


def _replay(product_id: int, events, now: datetime) -> ProductConsent:
    """Fold one product's events, oldest first, into its current consent: the definition that
    `CurrentConsent` is held to (tests/consent/test_current_consent.py)."""
    current = ProductConsent(product_id=product_id)
    for event in events:
        current = consent_after_event(current, event)
    return _by_clock(current, now)


def _fold(events, now: datetime) -> dict[int, dict[int, ProductConsent]]:
    """Replay events (oldest first) into current consent, per company and product."""
    grouped: dict[int, dict[int, list[ConsentEvent]]] = {}
    for event in events:
        grouped.setdefault(event.company_id, {}).setdefault(event.product_id, []).append(event)
    return {
        company_id: {
            product_id: _replay(product_id, product_events, now)
            for product_id, product_events in by_product.items()
        }
        for company_id, by_product in grouped.items()
    }


def consent_replayed(*, company_ids: Iterable[int] | None = None, now: datetime | None = None):
    """Current consent per company and product replayed from the event log: the evidence's own
    answer, for checking the stored table against (tests, and anyone auditing it). Reads every
    event of the companies: not for pages."""
    events = ConsentEvent.objects.order_by("occurred_at", "id")
    if company_ids is not None:
        events = events.filter(company_id__in=list(company_ids))
    return _fold(events, now or timezone.now())


def stored_consent_folded(events: Iterable) -> Iterable[tuple[int, int, ProductConsent]]:
    """(company pk, product pk, consent before the clock) for each pair with a decision, from
    `events` ordered by company, product, time and id: what `CurrentConsent` holds for them.
    Used to build the table from the log (its migration, consent.services)."""
    pair, current = None, None
    for event in events:
        if (event.company_id, event.product_id) != pair:
            if current is not None and current.state != ConsentState.NONE:
                yield (*pair, current)
            pair = (event.company_id, event.product_id)
            current = ProductConsent(product_id=event.product_id)
        current = consent_after_event(current, event)
    if current is not None and current.state != ConsentState.NONE:
        yield (*pair, current)


def stored_consent_of(row) -> ProductConsent:
    """What a `CurrentConsent` row stores, before the clock (`last_event` left out): the
    consent the next event steps from (`consent_after_event`)."""
    return ProductConsent(
        product_id=row.product_id,
        state=ConsentState(row.state),
        data_types=frozenset(row.data_types or ()),
        granted_at=row.granted_at,
        confirmed_at=row.confirmed_at,
    )


_LEAN_STORED_FIELDS = (
    "company_id",
    "product_id",
    "state",
    "data_types",
    "granted_at",
    "confirmed_at",
    "last_event_id",
)


def _stored_by_company(rows, now: datetime) -> dict[int, dict[int, ProductConsent]]:
    states: dict[int, dict[int, ProductConsent]] = {}
    for row in rows:
        current = ProductConsent(
            product_id=row.product_id,
            state=ConsentState(row.state),
            data_types=frozenset(row.data_types or ()),
            granted_at=row.granted_at,
            confirmed_at=row.confirmed_at,
            last_event=row.last_event if "last_event" in row._state.fields_cache else None,
        )
        states.setdefault(row.company_id, {})[row.product_id] = _by_clock(current, now)
    return states


def consent_states_of_companies(
    *, company_ids: Iterable[int] | None = None, product=None, now: datetime | None = None
) -> dict[int, dict[int, ProductConsent]]:
    """Current consent per company (pk) and product (pk), for many companies in one query,
    read from `CurrentConsent`.

    `company_ids` None means every company that has any consent decision. `last_event` is not
    loaded (None): ask `consent_states` or `consent_state` for one company's.
    """
    rows = CurrentConsent.objects.all()
    if company_ids is not None:
        rows = rows.filter(company_id__in=list(company_ids))
    if product is not None:
        rows = rows.filter(product=product)
    return _stored_by_company(rows.only(*_LEAN_STORED_FIELDS), now or timezone.now())


def consent_states(*, company, now: datetime | None = None) -> dict[int, ProductConsent]:
    """Every product the company ever decided on, by product id. One query."""
    rows = CurrentConsent.objects.filter(company=company).select_related("last_event")
    return _stored_by_company(rows, now or timezone.now()).get(company.pk, {})


def consent_state(*, company, product, now: datetime | None = None) -> ProductConsent:
    rows = CurrentConsent.objects.filter(company=company, product=product)
    states = _stored_by_company(rows.select_related("last_event"), now or timezone.now())
    return states.get(company.pk, {}).get(product.pk, ProductConsent(product_id=product.pk))


def required_data_types_of(products) -> dict[int, frozenset[str]]:
    """The required (not optional) data types of each product, by product id. One query."""
    required: dict[int, set[str]] = {product.pk: set() for product in products}
    links = ProductDataType.objects.filter(product__in=list(required), is_optional=False)
    for product_id, data_type in links.values_list("product_id", "data_type_id"):
        required[product_id].add(data_type)
    return {product_id: frozenset(data_types) for product_id, data_types in required.items()}


def required_data_types(product) -> frozenset[str]:
    return required_data_types_of([product])[product.pk]


def _describe(state: str) -> str:
    return {
        ConsentState.NONE: "no consent recorded",
        ConsentState.RECONFIRM_NEEDED: "consent must be reconfirmed by the customer",
        ConsentState.WITHDRAWN: "consent withdrawn",
        ConsentState.DECLINED: "consent declined",
    }.get(state, state)


def _product_refusal(
    product, current: ProductConsent, *, required: frozenset[str], asked: frozenset[str]
) -> str:
    """Why `current` consent does not cover `product` ("" when it does): the one definition
    of coverage. Active consent must cover every required data type the product has today
    (a data type made required after the grant needs its own consent) and every one asked."""
    if not current.is_active:
        return f"{product.name}: {_describe(current.state)}"
    missing = sorted((required | asked) - current.data_types)
    if missing:
        return (
            f"{product.name}: no consent for {', '.join(missing)} (a new consent request is needed)"
        )
    return ""


def companies_refused_for_consent(
    *, company_ids: Iterable[int], product=None, data_types: Iterable[str] | None = None
) -> dict[int, str]:
    """Invariant 4, the gate of every service in operations that adds a product or reads data:
    each company (pk) whose consent does not allow the read, with the reason shown to staff.

    With a product: active consent to that product must cover every required data type it has
    today, and every data type asked for. Without a product (client-level refreshes): each data
    type asked for must be covered by some active consent of the company; "all data" needs at
    least one active consent (Codat reads the client's fetch-on-first-link set, which consent
    per use case cannot describe more closely). Two queries whatever the number of companies.
    """
    ids = list(dict.fromkeys(company_ids))
    asked = frozenset(data_types or ())
    states = consent_states_of_companies(company_ids=ids, product=product)
    refused: dict[int, str] = {}
    if product is not None:
        required = required_data_types(product)
        for company_id in ids:
            current = states.get(company_id, {}).get(
                product.pk, ProductConsent(product_id=product.pk)
            )
            reason = _product_refusal(product, current, required=required, asked=asked)
            if reason:
                refused[company_id] = reason
        return refused
    for company_id in ids:
        active = [c for c in states.get(company_id, {}).values() if c.is_active]
        covered = frozenset().union(*(c.data_types for c in active)) if active else None
        reason = _refusal_without_product(covered, asked=asked)
        if reason:
            refused[company_id] = reason
    return refused


def _refusal_without_product(covered: frozenset[str] | None, *, asked: frozenset[str]) -> str:
    """Why a client-level read is refused ("" when it is not): `covered` is the union of the
    company's active consents' data types, None when it has no active consent at all."""
    if covered is None:
        return "no active consent for any use case"
    missing = sorted(asked - covered)
    if missing:
        return f"no consent for {', '.join(missing)}"
    return ""


# -- current consent as SQL, for selections of any size -------------------------------------------
#
# The bulk actions' review joins every selected company to its consent in one query: the stored
# rows with the clock applied in SQL as `_by_clock` applies it in Python.

_CURRENT_CONSENT_SQL = """
    SELECT company_id, product_id,
        CASE
            WHEN state = 'active' AND %(reconfirm_days)s::integer IS NOT NULL
                AND confirmed_at + make_interval(days => %(reconfirm_days)s::integer) <= %(now)s
                THEN 'reconfirm_needed'
            ELSE state
        END AS state,
        CASE WHEN state IN ('active', 'reconfirm_needed') THEN data_types END AS data_types
    FROM consent_currentconsent
    {product_filter}
"""


def current_consent_sql(*, product=None, now: datetime | None = None) -> tuple[str, dict]:
    """SQL (and its named parameters) of every company's current consent, one row per company
    and product ever consented to or refused (`company_id, product_id, state, data_types`);
    only `product`'s rows when given. PostgreSQL only. Companies without a row have none."""
    params = {
        "reconfirm_days": settings.CONSENT_RECONFIRM_AFTER_DAYS,
        "now": now or timezone.now(),
    }
    product_filter = ""
    if product is not None:
        product_filter = "WHERE product_id = %(consent_product)s"
        params["consent_product"] = product.pk
    return _CURRENT_CONSENT_SQL.format(product_filter=product_filter), params


def refusal_of_product_consent(
    product, *, state: str | None, data_types, required: frozenset[str], asked: frozenset[str]
) -> str:
    """`_product_refusal` for a row of `current_consent_sql` (state None: no row, no consent)."""
    current = ProductConsent(
        product_id=product.pk,
        state=ConsentState(state or ConsentState.NONE),
        data_types=frozenset(data_types or ()),
    )
    return _product_refusal(product, current, required=required, asked=asked)


def refusal_of_client_level_read(covered, *, asked: frozenset[str]) -> str:
    """`_refusal_without_product` for the union of a company's active consents' data types
    (None: no active consent)."""
    return _refusal_without_product(None if covered is None else frozenset(covered), asked=asked)


def consent_covers(company, product, *, now: datetime | None = None) -> bool:
    """True when active consent covers every required data type the product has today.

    Optional data types the SMB left out are not needed here; a refresh that asks for one of
    them is refused by `companies_refused_for_consent`.
    """
    current = consent_state(company=company, product=product, now=now)
    return not _product_refusal(
        product, current, required=required_data_types(product), asked=frozenset()
    )


@dataclass(frozen=True)
class ProductCoverage:
    """A company's consent for one product and whether it covers the product today."""

    consent: ProductConsent
    # Why consent does not cover the product, as the gate of operations would say it; "" when
    # it does.
    refusal: str

    @property
    def covered(self) -> bool:
        return not self.refusal


def consent_coverage_of_company(
    *, company, products, now: datetime | None = None
) -> dict[int, ProductCoverage]:
    """For each of `products`, the company's consent now and whether it covers the product's
    required data types (the company page's header). Two queries whatever the number of
    products, however long the company's consent history."""
    products = list(products)
    states = consent_states(company=company, now=now)
    required = required_data_types_of(products)
    coverage = {}
    for product in products:
        current = states.get(product.pk, ProductConsent(product_id=product.pk))
        refusal = _product_refusal(
            product, current, required=required[product.pk], asked=frozenset()
        )
        coverage[product.pk] = ProductCoverage(consent=current, refusal=refusal)
    return coverage


def companies_lacking_consent(*, products) -> list:
    """The companies whose consent does not cover every data type of at least one of
    `products`: whom a campaign for them asks when no companies are chosen. Three queries."""
    products = list(products)
    required = required_data_types_of(products)
    states = consent_states_of_companies()
    covered_for_all = [
        company_id
        for company_id, by_product in states.items()
        if not any(
            _product_refusal(
                product,
                by_product.get(product.pk, ProductConsent(product_id=product.pk)),
                required=required[product.pk],
                asked=frozenset(),
            )
            for product in products
        )
    ]
    return list(Company.objects.exclude(pk__in=covered_for_all))


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
        required = frozenset(cell.data_type for cell in cells if cell.required)
        covered = not _product_refusal(product, consent, required=required, asked=frozenset())
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


def consent_text_current(*, product) -> ConsentText | None:
    """The product's current (latest published) text version; None if it has none yet.

    Reads only: versions are published when the catalogue changes (products.services,
    the product and data type admin) and by `consent_text_publish`.
    """
    return ConsentText.objects.filter(product=product).order_by("-version").first()


def consent_texts_current(*, products) -> dict[int, ConsentText]:
    """The current text version of each product that has one, by product id. One query."""
    latest = ConsentText.objects.filter(product=OuterRef("product")).order_by("-version")
    texts = ConsentText.objects.filter(
        product__in=list(products), pk=Subquery(latest.values("pk")[:1])
    )
    return {text.product_id: text for text in texts}


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


# -- coverage across the book (the dashboard, the company consent list's filter) ---------------
#
# The same rules as `_by_clock` and `_product_refusal`, written as conditions the database
# evaluates on `CurrentConsent`, so that counting consent across 100,000 companies reads one row
# per company and product: a stored grant is in force unless its last confirmation is older than
# the reconfirmation policy allows, and it covers the product only if it holds every data type
# the product requires today. tests/consent/test_coverage.py holds these to the replay.

DECISIONS = (ConsentAction.GRANT, ConsentAction.WITHDRAW, ConsentAction.DECLINE)


class Coverage(models.TextChoices):
    """Where a company stands on consent for one product, for counting: each company in one."""

    GRANTED = "granted", "Granted"
    ASKED = "asked", "Asked, no answer yet"
    WITHDRAWN = "withdrawn", "Withdrawn or declined"
    MISSING = "missing", "Missing"


class _ArrayHolds(Func):
    """Whether a JSON list of strings (the grant's data types) holds a string: jsonb's `?` on
    PostgreSQL, which reads the stored array as it is (five times faster at 100,000 grants than
    matching its text); on SQLite, where JSON is stored as text, the quoted identifier in the
    text (identifiers hold no quotes)."""

    arg_joiner = " ? "
    template = "(%(expressions)s)"
    output_field = BooleanField()

    def as_sqlite(self, compiler, connection, **extra_context):
        array, item = (compiler.compile(expression) for expression in self.source_expressions)
        return f"({array[0]} LIKE '%%\"' || {item[0]} || '\"%%')", (*array[1], *item[1])


def _required_type_not_granted():
    """A data type the outer grant's product requires today that the grant does not hold.
    Written as NOT EXISTS over the product's data types rather than one test per data type, so
    the planner estimates the grants in force sensibly (a chain of tests made it expect one row
    and pick a plan quadratic in the number of companies)."""
    return (
        ProductDataType.objects.filter(product=OuterRef("product"), is_optional=False)
        .annotate(_granted=_ArrayHolds(OuterRef("data_types"), F("data_type_id")))
        .filter(_granted=False)
    )


def _in_force_and_covering(*, now: datetime) -> Q:
    """The condition on a `CurrentConsent` row that its consent allows a read (what
    `_product_refusal` passes): active, confirmed within the reconfirmation policy, holding
    every data type its product requires today."""
    condition = Q(state=ConsentState.ACTIVE) & ~Q(Exists(_required_type_not_granted()))
    days = settings.CONSENT_RECONFIRM_AFTER_DAYS
    if days:
        condition &= Q(confirmed_at__gt=now - timedelta(days=days))
    return condition


def _active_grants(*, now: datetime):
    """The stored consents in force and covering their product: one row per (company,
    product) whose consent allows a read."""
    return CurrentConsent.objects.filter(_in_force_and_covering(now=now))


def _open_requests(*, now: datetime):
    """(request, product) pairs still waiting for the company's answer on that product: not
    expired, and no grant or decline of the product recorded since the request was sent."""
    through = ConsentRequest.products.through
    answered = ConsentEvent.objects.filter(
        company=OuterRef("consentrequest__company"),
        product=OuterRef("product"),
        action__in=DECISIONS,
        occurred_at__gte=OuterRef("consentrequest__created_at"),
    )
    return through.objects.filter(
        consentrequest__answered_at__isnull=True, consentrequest__expires_at__gt=now
    ).filter(~Exists(answered))


@dataclass(frozen=True)
class CoverageConditions:
    """Per coverage, the condition on a row that names a company and a product through
    `company` and `product` (OuterRefs), for Exists() in any query."""

    granted: models.QuerySet
    asked: models.QuerySet
    refused: models.QuerySet  # stored consent withdrawn or declined

    def exists(self, kind: str, company, product) -> Exists:
        rows = {
            "granted": self.granted.filter(company=company, product=product),
            "asked": self.asked.filter(consentrequest__company=company, product=product),
            "refused": self.refused.filter(company=company, product=product),
        }[kind]
        return Exists(rows)

    def coverage_condition(self, coverage: str, company, product) -> Q:
        """The Q that places (company, product) in `coverage`; the four partition every pair
        that has consent events, an open request or a held assignment."""
        granted = self.exists("granted", company, product)
        asked = self.exists("asked", company, product)
        refused = self.exists("refused", company, product)
        if coverage == Coverage.GRANTED:
            return Q(granted)
        if coverage == Coverage.ASKED:
            return ~Q(granted) & Q(asked)
        if coverage == Coverage.WITHDRAWN:
            return ~Q(granted) & ~Q(asked) & Q(refused)
        if coverage == Coverage.MISSING:
            return ~Q(granted) & ~Q(asked) & ~Q(refused)
        raise ValueError(f"unknown coverage {coverage!r}")


def coverage_conditions(*, now: datetime | None = None) -> CoverageConditions:
    now = now or timezone.now()
    return CoverageConditions(
        granted=_active_grants(now=now),
        asked=_open_requests(now=now),
        refused=CurrentConsent.objects.filter(
            state__in=(ConsentState.WITHDRAWN, ConsentState.DECLINED)
        ),
    )


def companies_with_coverage(*, product, coverage: str, now: datetime | None = None):
    """The companies in `coverage` for `product` (the company consent list's filter): granted,
    asked and withdrawn among every company; missing among those holding the product."""
    conditions = coverage_conditions(now=now)
    companies = Company.objects.filter(
        conditions.coverage_condition(coverage, OuterRef("pk"), product.pk)
    )
    if coverage == Coverage.MISSING:
        companies = companies.filter(
            product_assignments__product=product, product_assignments__status__in=HELD_STATUSES
        )
    return companies


@dataclass(frozen=True)
class ProductCoverageCounts:
    """How many companies stand where, for one product (the dashboard)."""

    product: Product
    granted: int
    asked: int
    withdrawn: int
    missing: int

    @property
    def total(self) -> int:
        return self.granted + self.asked + self.withdrawn + self.missing


def consent_coverage_by_product(*, now: datetime | None = None) -> list[ProductCoverageCounts]:
    """Per product: companies whose consent covers it (granted), asked and not answered yet,
    withdrawn or declined, and holding it with none of those (missing). Five queries whatever
    the number of companies: each count is grouped by product in the database, from the
    events, requests and assignments, never per company."""
    now = now or timezone.now()
    products = list(Product.objects.order_by("name"))
    conditions = coverage_conditions(now=now)
    company, product = OuterRef("company"), OuterRef("product")

    def per_product(rows, company_field: str = "company") -> dict[int, int]:
        return dict(
            rows.order_by()
            .values_list("product_id")
            .annotate(n=Count(company_field, distinct=True))
        )

    def pairs_per_product(rows) -> dict[int, int]:
        # Stored consent has one row per (company, product): no DISTINCT (a sort) needed.
        return dict(rows.order_by().values_list("product_id").annotate(n=Count("pk")))

    granted = pairs_per_product(conditions.granted)
    asked = per_product(
        conditions.asked.filter(
            ~conditions.exists("granted", OuterRef("consentrequest__company"), product)
        ),
        "consentrequest__company",
    )
    withdrawn = pairs_per_product(
        conditions.refused.filter(~conditions.exists("asked", company, product))
    )
    missing = pairs_per_product(
        CompanyProduct.objects.filter(status__in=HELD_STATUSES).filter(
            conditions.coverage_condition(Coverage.MISSING, company, product)
        )
    )
    return [
        ProductCoverageCounts(
            product=item,
            granted=granted.get(item.pk, 0),
            asked=asked.get(item.pk, 0),
            withdrawn=withdrawn.get(item.pk, 0),
            missing=missing.get(item.pk, 0),
        )
        for item in products
    ]
