"""The dual-sync guard: adding a custom product to a company whose data types a client-level
schedule still reads is left out with the reason, as the consent gate leaves out a company
without consent (operations/planning.py asks the add_product spec's guard).

An admin may override it with a written reason; the reason is kept on each operation's
parameters (`DUAL_SYNC_OVERRIDE`) and in the audit trail. Once the client-level schedules of
those data types are off (`syncSchedule` 0, recorded from Codat), the guard passes by itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from syncsettings.selectors import dual_sync_reason, dual_sync_risk_groups, dual_sync_risks

# The parameter of an add_product row that carries an admin's written override reason.
DUAL_SYNC_OVERRIDE = "dual_sync_override_reason"


def dual_sync_override_reason(parameters: dict | None) -> str:
    return str((parameters or {}).get(DUAL_SYNC_OVERRIDE) or "").strip()


def dual_sync_left_out(*, company_ids: Sequence[int], product, parameters: dict) -> dict[int, str]:
    """Company id -> why adding `product` is refused, for the companies at risk."""
    if product is None or dual_sync_override_reason(parameters):
        return {}
    return {
        company_id: dual_sync_reason(product=product, overlapping=overlap)
        for company_id, overlap in dual_sync_risks(company_ids=company_ids, product=product).items()
    }


def dual_sync_left_out_groups(*, product, parameters: dict) -> list[tuple[object, str]]:
    """The same as filters on Company (Q) with their reasons, for counting in SQL."""
    if product is None or dual_sync_override_reason(parameters):
        return []
    from django.db.models import Q

    from products.models import CompanyProduct, CompanyProductStatus

    # A company that already has the product is left out for that reason, as planning says.
    already = ~Q(
        pk__in=CompanyProduct.objects.filter(
            product=product, status=CompanyProductStatus.ACTIVE
        ).values("company_id")
    )
    return [
        (condition & already, dual_sync_reason(product=product, overlapping=overlap))
        for condition, overlap in dual_sync_risk_groups(product=product)
    ]


# -- refresh by mode ---------------------------------------------------------------------------

PRODUCT_LEVEL_REFRESH_REASON = (
    "read at product level (it holds a custom product): refresh each custom product instead,"
    " so that no data type is read outside the product's schedule"
)


def _holds_custom_product():
    from django.db.models import Exists, OuterRef, Q

    from products.models import HELD_STATUSES, CompanyProduct, ProductKind

    return Q(
        Exists(
            CompanyProduct.objects.filter(
                company=OuterRef("pk"), status__in=HELD_STATUSES, product__kind=ProductKind.CUSTOM
            )
        )
    )


def client_level_refresh_left_out(
    *, company_ids: Sequence[int], product, parameters: dict
) -> dict[int, str]:
    """A client-level refresh (all data, one data type) fits client-level companies only: a
    company read at product level (or at risk of dual syncs) holds a custom product, and
    refreshes it instead."""
    from companies.models import Company

    return dict.fromkeys(
        Company.objects.filter(pk__in=list(company_ids))
        .filter(_holds_custom_product())
        .values_list("pk", flat=True),
        PRODUCT_LEVEL_REFRESH_REASON,
    )


def client_level_refresh_left_out_groups(*, product, parameters: dict) -> list[tuple[object, str]]:
    return [(_holds_custom_product(), PRODUCT_LEVEL_REFRESH_REASON)]
