"""A believable demo: the product catalogue and a few dozen companies in every state.

Used by `manage.py seed_demo` (and so by `make run`). Deterministic: ids derive from names,
so seeding twice updates rather than duplicates.
"""

import random
import uuid
from datetime import time, timedelta

from django.db import transaction
from django.utils import timezone

from companies.services import (
    company_mirror_from_codat,
    data_status_mirror_from_codat,
    pull_operation_mirror_from_codat,
)
from products.models import Product
from products.services import product_define

DEMO_NAMESPACE = uuid.UUID("6f1c2a52-7a4e-4d59-9a55-1f7d3c0e8b21")

PRODUCTS = (
    {
        "identifier": "lending",
        "name": "Lending",
        "kind": "standard",
        "description": "Assess your business for credit using its financial statements, "
        "invoices, bills and bank data.",
        "data_types": [
            "balanceSheet",
            "profitAndLoss",
            "cashFlowStatement",
            "chartOfAccounts",
            "company",
            "invoices",
            "bills",
            "customers",
            "suppliers",
            "banking-accounts",
            "banking-accountBalances",
            "banking-transactions",
        ],
        "optional": ("cashFlowStatement",),
    },
    {
        "identifier": "bank-feeds",
        "name": "Bank Feeds",
        "kind": "standard",
        "description": "Send the transactions of your accounts with us into your accounting "
        "software, so your books stay reconciled.",
        "data_types": ["bankAccounts", "bankTransactions"],
    },
    {
        "identifier": "expenses",
        "name": "Expenses",
        "kind": "standard",
        "description": "Record your card spending in your accounting software against the "
        "right accounts, suppliers and tax rates.",
        "data_types": ["chartOfAccounts", "suppliers", "taxRates", "trackingCategories"],
        "optional": ("trackingCategories",),
    },
    # Two custom products sharing `payments`, one read daily at 23:00 and one hourly, as in
    # the example of Codat's multiple-use-cases guide.
    {
        "identifier": "invoice-finance",
        "name": "Invoice finance",
        "kind": "custom",
        "description": "Advance money against your unpaid invoices, checking each night which "
        "invoices have been paid.",
        "data_types": ["invoices", "payments", "customers", "creditNotes"],
        "optional": ("creditNotes",),
        "schedule_kind": "daily",
        "schedule_time": time(23, 0),
    },
    {
        "identifier": "cash-flow-monitoring",
        "name": "Cash-flow monitoring",
        "kind": "custom",
        "description": "Watch your incoming payments and bank balances through the day to "
        "offer an overdraft when you need one.",
        "data_types": ["payments", "bankAccounts", "bankTransactions"],
        "schedule_kind": "hourly",
    },
)

PLATFORMS = (
    ("gbol", "Xero"),
    ("mqjo", "Codat Sandbox"),
    ("fbrh", "FreeAgent"),
    ("akxx", "NetSuite"),
)

COMPANY_NAMES = (
    "Harbour Coffee Roasters",
    "Northgate Joinery",
    "Bramble & Finch Florists",
    "Kestrel Logistics",
    "Oakmoor Veterinary Practice",
    "Tidewater Kayak Hire",
    "Copperleaf Bakery",
    "Linden Street Dental",
    "Peakline Scaffolding",
    "Saltmarsh Brewing Co",
    "Juniper Yoga Studio",
    "Redbrick Property Services",
    "Fernhill Garden Centre",
    "Blue Anchor Fish Bar",
    "Marlow & Sons Plumbing",
    "Quayside Print Works",
    "Thistle Hair Salon",
    "Greystone Architects",
    "Hollybush Nursery School",
    "Lantern Books",
    "Meadowlark Catering",
    "Ironbridge Cycles",
    "Silverbirch Accountancy",
    "Wildflower Wedding Cakes",
    "Castlegate Pharmacy",
    "Riverside Motor Repairs",
    "Amberley Electrical",
    "Foxglove Interiors",
    "Pennine Outdoor Gear",
    "Starling Digital Studio",
    "Orchard Lane Cider",
    "Westcliff Physiotherapy",
    "Brightwater Cleaning",
    "Willowbank Care Home",
    "Cobalt Tile & Stone",
    "Heronsgate Removals",
)

# Connection states in rotation; "none" is a company that has not connected yet.
CONNECTION_STATES = ("Linked", "Linked", "PendingAuth", "Linked", "Deauthorized", "Unlinked", None)
DATASET_OUTCOMES = ("Complete",) * 8 + ("FetchError", "Fetching", "Queued", "AuthError")


def _demo_id(*parts: str) -> str:
    return str(uuid.uuid5(DEMO_NAMESPACE, "/".join(parts)))


def _iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def seed_products() -> list[Product]:
    return [
        product_define(
            identifier=spec["identifier"],
            name=spec["name"],
            kind=spec["kind"],
            description=spec["description"],
            schedule_kind=spec.get("schedule_kind", "none"),
            schedule_time=spec.get("schedule_time"),
            data_types=spec["data_types"],
            optional_data_types=spec.get("optional", ()),
        )
        for spec in PRODUCTS
    ]


def demo_company_payloads(now=None) -> list[dict]:
    """Codat-shaped company payloads (with connections and products) for the demo companies."""
    now = now or timezone.now()
    rng = random.Random(20261122)
    payloads = []
    for index, name in enumerate(COMPANY_NAMES):
        company_id = _demo_id("company", name)
        created = now - timedelta(days=rng.randint(20, 400))
        state = CONNECTION_STATES[index % len(CONNECTION_STATES)]
        connections = []
        if state:
            platform_key, platform_name = PLATFORMS[index % len(PLATFORMS)]
            connection_id = _demo_id("connection", name)
            errors = []
            if state == "Deauthorized":
                errors = [
                    {
                        "statusCode": "401",
                        "statusText": "Unauthorized",
                        "errorMessage": "The platform revoked access.",
                        "erroredOnUtc": _iso(now - timedelta(days=2)),
                        "status": "Active",
                    }
                ]
            connections.append(
                {
                    "id": connection_id,
                    "integrationId": _demo_id("integration", platform_key),
                    "integrationKey": platform_key,
                    "sourceId": _demo_id("source", platform_key),
                    "platformName": platform_name,
                    "sourceType": "Accounting",
                    "status": state,
                    "linkUrl": f"https://link-api.codat.io/companies/{company_id}/connections/"
                    f"{connection_id}/start",
                    "created": _iso(created + timedelta(minutes=5)),
                    "lastSync": _iso(now - timedelta(hours=rng.randint(1, 30)))
                    if state == "Linked"
                    else None,
                    "dataConnectionErrors": errors,
                }
            )
        products = []
        if state in ("Linked", "Deauthorized", "Unlinked"):
            products = rng.sample([spec["identifier"] for spec in PRODUCTS], k=rng.randint(1, 3))
        payloads.append(
            {
                "id": company_id,
                "name": name,
                "description": f"Demo company {index + 1}",
                "redirect": f"https://link.codat.io/company/{company_id}",
                "created": _iso(created),
                "lastSync": connections[0]["lastSync"] if connections else None,
                "tags": {"segment": rng.choice(["retail", "services", "trade"])},
                "products": products,
                "dataConnections": connections,
            }
        )
    return payloads


@transaction.atomic
def seed_demo(now=None) -> dict[str, int]:
    now = now or timezone.now()
    rng = random.Random(7)
    products = {product.identifier: product for product in seed_products()}
    companies = 0
    for payload in demo_company_payloads(now):
        company = company_mirror_from_codat(data=payload)
        companies += 1
        connections = payload["dataConnections"]
        if not connections or connections[0]["status"] == "PendingAuth":
            continue
        data_types = sorted(
            {
                data_type.identifier
                for identifier in payload["products"]
                for data_type in products[identifier].data_types.all()
            }
        )
        statuses = {}
        for data_type in data_types:
            outcome = rng.choice(DATASET_OUTCOMES)
            dataset_id = _demo_id("dataset", payload["id"], data_type)
            requested = now - timedelta(hours=rng.randint(1, 20))
            finished = outcome not in ("Fetching", "Queued")
            pull_operation_mirror_from_codat(
                company=company,
                data={
                    "id": dataset_id,
                    "companyId": payload["id"],
                    "connectionId": connections[0]["id"],
                    "dataType": data_type,
                    "status": outcome,
                    "requested": _iso(requested),
                    "completed": _iso(requested + timedelta(minutes=3)) if finished else None,
                    "progress": 100 if finished else 40,
                    "isCompleted": outcome == "Complete",
                    "isErrored": outcome.endswith("Error"),
                    "errorMessage": "The platform did not answer."
                    if outcome == "FetchError"
                    else "",
                },
            )
            statuses[data_type] = {
                "dataType": data_type,
                "currentStatus": outcome,
                "latestSyncId": dataset_id,
                **(
                    {
                        "lastSuccessfulSync": _iso(requested + timedelta(minutes=3)),
                        "latestSuccessfulSyncId": dataset_id,
                    }
                    if outcome == "Complete"
                    else {}
                ),
            }
        data_status_mirror_from_codat(company=company, data_statuses=statuses)
    return {"products": len(products), "companies": companies}
