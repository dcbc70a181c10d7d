"""Reads of the portal's copy of Codat's sync settings: which data types a client-level
schedule reads for a company, the company's mode, and the dual-sync risks of a selection.

A dual sync is one data type read both by a client-level schedule (the client's settings, or
the company's own) and by a custom product the company holds: Codat then reads it twice, and
two reads of one data type collide ("already in progress"). Standard products are read on
Codat's own terms and are not counted here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Case, Exists, OuterRef, Q, QuerySet, Value, When
from django.db.models.fields import CharField

from products.models import HELD_STATUSES, CompanyProduct, Product, ProductKind
from syncsettings.models import (
    ClientSyncSettings,
    CompanySyncSettings,
    ScheduledDataType,
    SyncModeKind,
)
from syncsettings.validation import schedule_in_words

__all__ = [
    "SyncMode",
    "SyncModeKind",
    "client_scheduled_data_types",
    "client_sync_settings_get",
    "company_sync_mode",
    "company_sync_settings_list",
    "dual_sync_reason",
    "dual_sync_risks",
    "with_sync_mode",
]


@dataclass(frozen=True)
class SyncMode:
    mode: SyncModeKind
    reason: str  # plain words, for the company page
    # Read both by a client-level schedule and by a custom product the company holds.
    overlapping_data_types: tuple[str, ...] = ()


def client_sync_settings_get() -> ClientSyncSettings | None:
    return ClientSyncSettings.objects.filter(pk=1).first()


def company_sync_settings_list() -> QuerySet[CompanySyncSettings]:
    return CompanySyncSettings.objects.select_related("company").order_by("company__name")


def client_scheduled_data_types(*, company=None) -> dict[str, int]:
    """Data type -> `syncSchedule` hours, for the types a client-level schedule reads: the
    company's own settings where it has them, else the client's (types with 0 are left out)."""
    rows = ScheduledDataType.objects.filter(company__isnull=True)
    if company is not None and CompanySyncSettings.objects.filter(company=company).exists():
        rows = ScheduledDataType.objects.filter(company=company)
    return dict(rows.order_by("data_type").values_list("data_type", "hours"))


def _words(data_types: Iterable[str]) -> str:
    items = list(data_types)
    if len(items) > 6:
        return f"{', '.join(items[:6])} and {len(items) - 6} more"
    return ", ".join(items)


# How every dual-sync reason starts (the confirmation page offers admins the override on it).
DUAL_SYNC_REASON_START = "dual-sync risk:"


def dual_sync_reason(*, product: Product, overlapping: Iterable[str]) -> str:
    """Why adding `product` is refused, in words (the left-out list of the confirmation page)."""
    return (
        f"{DUAL_SYNC_REASON_START} the client-level schedule still reads "
        f"{_words(overlapping)}, which {product.name} would read again; turn those "
        "client-level schedules off first"
    )


def company_sync_mode(*, company) -> SyncMode:
    """The company's mode and why, from the recorded settings and its custom products."""
    scheduled = client_scheduled_data_types(company=company)
    own = CompanySyncSettings.objects.filter(company=company).exists()
    held = (
        CompanyProduct.objects.filter(
            company=company, status__in=HELD_STATUSES, product__kind=ProductKind.CUSTOM
        )
        .select_related("product")
        .prefetch_related("product__product_data_types")
        .order_by("product__name")
    )
    product_types: dict[str, list[str]] = defaultdict(list)
    for assignment in held:
        for row in assignment.product.product_data_types.all():
            product_types[row.data_type_id].append(assignment.product.name)
    source = "the company's own sync settings" if own else "the client's sync settings"
    overlap = tuple(sorted(set(scheduled) & set(product_types)))
    if overlap:
        first = overlap[0]
        return SyncMode(
            mode=SyncModeKind.DUAL_SYNC_RISK,
            reason=(
                f"{_words(overlap)} {'is' if len(overlap) == 1 else 'are'} read twice: on a "
                f"client-level schedule ({source}; {first} "
                f"{schedule_in_words(scheduled[first])}) and by "
                f"{', '.join(sorted(set(product_types[first])))}. Turn the client-level "
                "schedule off for these data types."
            ),
            overlapping_data_types=overlap,
        )
    if product_types:
        names = sorted({name for names in product_types.values() for name in names})
        extra = f"; {source} still read other data types" if scheduled else ""
        return SyncMode(
            mode=SyncModeKind.PRODUCT_LEVEL,
            reason=(
                f"Read by its custom product{'s' if len(names) > 1 else ''} "
                f"{', '.join(names)}, on the product's schedule{extra}."
            ),
        )
    if scheduled:
        return SyncMode(
            mode=SyncModeKind.CLIENT_LEVEL,
            reason=(
                f"Codat reads {_words(scheduled)} on a client-level schedule ({source}); "
                "no custom product reads this company's data."
            ),
        )
    if client_sync_settings_get() is None and not own:
        reason = "The client's sync settings have not been read from Codat yet."
    else:
        reason = "No client-level schedule and no custom product reads this company's data."
    return SyncMode(mode=SyncModeKind.NONE, reason=reason)


def dual_sync_risks(*, company_ids, product: Product | None = None) -> dict[int, tuple[str, ...]]:
    """Company id -> the data types read twice: if `product` (a custom product) were added,
    or, without `product`, as things stand. Companies without a risk are left out. A few
    queries whatever the number of companies."""
    if product is not None and product.kind != ProductKind.CUSTOM:
        return {}
    client = set(
        ScheduledDataType.objects.filter(company__isnull=True).values_list("data_type", flat=True)
    )
    ids = list(company_ids)
    own: dict[int, set[str]] = {
        pk: set()
        for pk in CompanySyncSettings.objects.filter(company_id__in=ids).values_list(
            "company_id", flat=True
        )
    }
    for company_id, data_type in ScheduledDataType.objects.filter(
        company_id__in=list(own)
    ).values_list("company_id", "data_type"):
        own[company_id].add(data_type)
    if product is not None:
        product_types = set(product.product_data_types.values_list("data_type_id", flat=True))
        risks = {}
        for company_id in ids:
            overlap = own.get(company_id, client) & product_types
            if overlap:
                risks[company_id] = tuple(sorted(overlap))
        return risks
    held: dict[int, set[str]] = defaultdict(set)
    for company_id, data_type in CompanyProduct.objects.filter(
        company_id__in=ids,
        status__in=HELD_STATUSES,
        product__kind=ProductKind.CUSTOM,
        product__product_data_types__isnull=False,
    ).values_list("company_id", "product__product_data_types__data_type_id"):
        held[company_id].add(data_type)
    risks = {}
    for company_id, types in held.items():
        overlap = own.get(company_id, client) & types
        if overlap:
            risks[company_id] = tuple(sorted(overlap))
    return risks


def dual_sync_risk_groups(*, product: Product) -> list[tuple[Q, tuple[str, ...]]]:
    """The companies adding `product` would put at risk, as filters on Company with the data
    types read twice: all companies without settings of their own (if the client's schedule
    overlaps the product), and the companies whose own settings overlap it, grouped by overlap.
    For the confirmation page's summary, which counts in SQL and never lists every company."""
    if product.kind != ProductKind.CUSTOM:
        return []
    product_types = set(product.product_data_types.values_list("data_type_id", flat=True))
    groups: list[tuple[Q, tuple[str, ...]]] = []
    client_overlap = tuple(
        sorted(
            ScheduledDataType.objects.filter(
                company__isnull=True, data_type__in=product_types
            ).values_list("data_type", flat=True)
        )
    )
    if client_overlap:
        groups.append((Q(sync_settings__isnull=True), client_overlap))
    by_overlap: dict[tuple[str, ...], list[int]] = defaultdict(list)
    overlaps: dict[int, set[str]] = defaultdict(set)
    for company_id, data_type in ScheduledDataType.objects.filter(
        company__isnull=False, data_type__in=product_types
    ).values_list("company_id", "data_type"):
        overlaps[company_id].add(data_type)
    for company_id, types in overlaps.items():
        by_overlap[tuple(sorted(types))].append(company_id)
    for overlap, ids in sorted(by_overlap.items()):
        groups.append((Q(pk__in=ids), overlap))
    return groups


def with_sync_mode(queryset: QuerySet) -> QuerySet:
    """Companies annotated with `sync_mode` (a SyncModeKind value), computed in the same query
    (no query per company): the company list's column and filter."""
    has_own = Exists(CompanySyncSettings.objects.filter(company=OuterRef("pk")))
    held_custom = CompanyProduct.objects.filter(
        company=OuterRef("pk"), status__in=HELD_STATUSES, product__kind=ProductKind.CUSTOM
    )
    own_types = ScheduledDataType.objects.filter(company=OuterRef(OuterRef("pk"))).values(
        "data_type"
    )
    client_types = ScheduledDataType.objects.filter(company__isnull=True).values("data_type")
    risk_own = Exists(held_custom.filter(product__product_data_types__data_type_id__in=own_types))
    risk_client = Exists(
        held_custom.filter(product__product_data_types__data_type_id__in=client_types)
    )
    own_scheduled = Exists(ScheduledDataType.objects.filter(company=OuterRef("pk")))
    client_scheduled = Exists(ScheduledDataType.objects.filter(company__isnull=True))
    return queryset.annotate(
        sync_mode=Case(
            When(has_own & risk_own, then=Value(SyncModeKind.DUAL_SYNC_RISK.value)),
            When(~has_own & risk_client, then=Value(SyncModeKind.DUAL_SYNC_RISK.value)),
            When(Exists(held_custom), then=Value(SyncModeKind.PRODUCT_LEVEL.value)),
            When(has_own & own_scheduled, then=Value(SyncModeKind.CLIENT_LEVEL.value)),
            When(~has_own & client_scheduled, then=Value(SyncModeKind.CLIENT_LEVEL.value)),
            default=Value(SyncModeKind.NONE.value),
            output_field=CharField(),
        )
    )


# -- the sync settings page -----------------------------------------------------------------------

OVERRIDES_SHOWN = 50


@dataclass(frozen=True)
class SettingRow:
    data_type: str
    name: str
    fetch_on_first_link: bool
    schedule: str  # in words
    hours: int
    sync_from: str  # a date, a window, or "Codat's default"
    months_to_sync: int | None
    order: int


def setting_rows(settings: Iterable[dict]) -> list[SettingRow]:
    """Codat's settings as the page shows them, in Codat's sync order."""
    from products.models import DataType

    names = dict(DataType.objects.values_list("identifier", "name"))
    rows = []
    for setting in sorted(settings, key=lambda s: (s.get("syncOrder", 0), s.get("dataType", ""))):
        if setting.get("syncFromUtc"):
            sync_from = f"from {setting['syncFromUtc'][:10]}"
        elif setting.get("syncFromWindow"):
            months = setting["syncFromWindow"]
            sync_from = f"the last {months} month{'s' if months != 1 else ''}"
        else:
            sync_from = "Codat's default"
        rows.append(
            SettingRow(
                data_type=setting["dataType"],
                name=names.get(setting["dataType"], setting["dataType"]),
                fetch_on_first_link=bool(setting.get("fetchOnFirstLink")),
                schedule=schedule_in_words(setting.get("syncSchedule") or 0),
                hours=setting.get("syncSchedule") or 0,
                sync_from=sync_from,
                months_to_sync=setting.get("monthsToSync"),
                order=setting.get("syncOrder", 0),
            )
        )
    return rows


@dataclass(frozen=True)
class CustomProductSchedule:
    product: Product
    schedule: str
    data_types: tuple[str, ...]
    # The product's data types the client's schedule also reads: a dual sync wherever the
    # company has no settings of its own.
    client_also_reads: tuple[str, ...]


def sync_settings_page() -> dict:
    """Everything the sync settings page shows, in a fixed number of queries."""
    from django.db.models import Count

    from companies.models import Company
    from operations.models import Operation, OperationKind

    client = client_sync_settings_get()
    client_types = set(
        ScheduledDataType.objects.filter(company__isnull=True).values_list("data_type", flat=True)
    )
    counts = dict(
        with_sync_mode(Company.objects.filter(codat_deleted_at__isnull=True))
        .order_by()
        .values("sync_mode")
        .annotate(n=Count("pk"))
        .values_list("sync_mode", "n")
    )
    overrides = list(company_sync_settings_list()[:OVERRIDES_SHOWN])
    products = [
        CustomProductSchedule(
            product=product,
            schedule=product.schedule_display,
            data_types=types,
            client_also_reads=tuple(t for t in types if t in client_types),
        )
        for product in Product.objects.filter(kind=ProductKind.CUSTOM)
        .prefetch_related("product_data_types")
        .order_by("name")
        for types in [tuple(sorted(r.data_type_id for r in product.product_data_types.all()))]
    ]
    last_read = (
        Operation.objects.filter(kind=OperationKind.READ_CLIENT_SYNC_SETTINGS)
        .order_by("-created_at", "-id")
        .first()
    )
    last_set = (
        Operation.objects.filter(kind=OperationKind.SET_CLIENT_SYNC_SETTINGS)
        .order_by("-created_at", "-id")
        .first()
    )
    return {
        "client": client,
        "rows": setting_rows(client.settings) if client else [],
        "mode_counts": [(kind, counts.get(kind.value, 0)) for kind in SyncModeKind],
        "overrides": [
            {
                "row": row,
                "scheduled": _words(
                    f"{s['dataType']} {schedule_in_words(s['syncSchedule'])}"
                    for s in row.settings
                    if (s.get("syncSchedule") or 0) > 0
                )
                or "no schedule",
            }
            for row in overrides
        ],
        "overrides_count": CompanySyncSettings.objects.count(),
        "products": products,
        "last_read": last_read,
        "last_set": last_set,
    }
