"""The demo of `make run`: the product catalogue, then every company imported from Codat.

The companies are not invented here: they are whatever the Codat at CODAT_BASE_URL holds. Under
`make run` that is the sandbox, which `python -m sandbox.demo` filled with companies in every
state first, so the portal meets them exactly as it would meet a real client's companies.
Safe to run again: the catalogue is updated and the import mirrors what Codat says now.
"""

import logging
from datetime import time

from django.contrib.auth import get_user_model
from django.db import transaction

from codat import CodatError
from products.models import CompanyProduct, CompanyProductStatus, Product
from products.services import product_define

# The products, and their data types, must be those Codat has (here, the sandbox's).
from sandbox.catalogue import STANDARD_PRODUCTS
from sandbox.demo import CUSTOM_PRODUCTS

logger = logging.getLogger(__name__)

PRODUCTS = (
    {
        "identifier": "lending",
        "kind": "standard",
        "description": "Assess your business for credit using its financial statements, "
        "invoices, bills and bank data.",
        "optional": ("banking-accountBalances",),
    },
    {
        "identifier": "bank-feeds",
        "kind": "standard",
        "description": "Send the transactions of your accounts with us into your accounting "
        "software, so your books stay reconciled.",
    },
    {
        "identifier": "expenses",
        "kind": "standard",
        "description": "Record your card spending in your accounting software against the "
        "right accounts, suppliers and tax rates.",
        "optional": ("trackingCategories",),
    },
    {
        "identifier": "invoice-finance",
        "kind": "custom",
        "description": "Advance money against your unpaid invoices, checking each night which "
        "invoices have been paid.",
        "optional": ("creditNotes",),
    },
    {
        "identifier": "cash-flow-monitoring",
        "kind": "custom",
        "description": "Watch your incoming payments and bank balances through the day to "
        "offer an overdraft when you need one.",
    },
)

# Demo companies whose owners have not yet agreed to their use cases, so that the consent
# matrix shows what is missing and a consent link can be tried.
AWAITING_CONSENT = {"Harbour Coffee Roasters", "Kestrel Logistics"}


def _schedule(custom: dict) -> dict:
    schedule = custom.get("schedule") or {}
    if schedule.get("frequency") == "daily":
        hours, minutes = (int(part) for part in schedule["time"].split(":"))
        return {"schedule_kind": "daily", "schedule_time": time(hours, minutes)}
    if schedule.get("frequency") == "hourly":
        return {"schedule_kind": "hourly", "schedule_time": None}
    return {"schedule_kind": "none", "schedule_time": None}


def seed_products() -> list[Product]:
    products = []
    for spec in PRODUCTS:
        at_codat = CUSTOM_PRODUCTS.get(spec["identifier"]) or STANDARD_PRODUCTS[spec["identifier"]]
        schedule = _schedule(at_codat) if spec["kind"] == "custom" else {}
        products.append(
            product_define(
                identifier=spec["identifier"],
                name=at_codat["name"],
                kind=spec["kind"],
                description=spec["description"],
                data_types=at_codat["dataTypes"],
                optional_data_types=spec.get("optional", ()),
                **schedule,
            )
        )
    return products


def record_demo_consent(operator) -> int:
    """Record, as the named operator acting for each customer, consent to the demo companies'
    active products (all but AWAITING_CONSENT), so refreshes are allowed where they would be."""
    from consent.selectors import consent_covers, consent_text_current
    from consent.services import Actor, ConsentChannel, consent_grant

    recorded = 0
    active = CompanyProduct.objects.filter(status=CompanyProductStatus.ACTIVE).select_related(
        "company", "product"
    )
    for assignment in active.exclude(company__name__in=AWAITING_CONSENT):
        if consent_covers(assignment.company, assignment.product):
            continue
        with transaction.atomic():
            consent_grant(
                company=assignment.company,
                product=assignment.product,
                text=consent_text_current(product=assignment.product),
                actor=Actor(channel=ConsentChannel.ADMIN, user=operator),
            )
        recorded += 1
    return recorded


def seed_demo(*, operator_username: str = "admin") -> dict[str, int | str]:
    from companies.codat_import import companies_import_with_details_from_codat

    products = seed_products()
    counts: dict[str, int | str] = {"products": len(products), "companies": 0, "consents": 0}
    try:
        counts["companies"] = companies_import_with_details_from_codat()
    except CodatError as error:
        logger.warning("seed_demo.codat_unreachable", extra={"error": str(error)})
        counts["note"] = f"companies not imported: Codat did not answer ({error})"
        return counts
    operator = get_user_model().objects.filter(username=operator_username).first()
    if operator is None:
        counts["note"] = f"no consent recorded: no staff account named {operator_username!r}"
    else:
        counts["consents"] = record_demo_consent(operator)
    return counts
