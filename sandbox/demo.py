"""The demo world of `make run`: two custom products and thirty companies in every state.

Built with the sandbox's own internals, the way a client and its SMBs would build it at Codat:
custom products are defined (the real Codat defines them for a client on request), companies and
connections are created as Create Company and Create Connection do, and connections are then
authorised, cancelled or lost as the control API's Link outcomes do. Idempotent: a company whose
name exists is left as it is.

    curl -X POST -H "Authorization: Basic $(printf %s "$CODAT_API_KEY" | base64)" \
        http://127.0.0.1:8765/_sandbox/demo
    python -m sandbox --demo ...     (seeds the world as the sandbox starts)
"""

import asyncio
import time

from starlette.requests import Request
from starlette.routing import Route

from sandbox.companies_api import add_company, add_connection
from sandbox.control import define_product, set_company_outcomes
from sandbox.engine import is_terminal
from sandbox.http import json_response, sandbox_of

CUSTOM_PRODUCTS = {
    # Two custom products sharing `payments`, one read daily at 23:00 and one hourly, as in the
    # example of Codat's multiple-use-cases guide.
    "invoice-finance": {
        "name": "Invoice finance",
        "dataTypes": ["invoices", "payments", "customers", "creditNotes"],
        "schedule": {"frequency": "daily", "time": "23:00"},
    },
    "cash-flow-monitoring": {
        "name": "Cash-flow monitoring",
        "dataTypes": ["payments", "bankAccounts", "bankTransactions"],
        "schedule": {"frequency": "hourly"},
    },
}

# (name, platform key or None, connection outcome, products, data types whose read fails)
COMPANIES = (
    ("Harbour Coffee Roasters", "gbol", "Linked", ["lending", "invoice-finance"], {}),
    ("Northgate Joinery", "qhyg", "Linked", ["invoice-finance"], {"payments": "FetchError"}),
    ("Bramble & Finch Florists", "mqjo", "PendingAuth", ["lending"], {}),
    ("Kestrel Logistics", "fbrh", "Linked", ["cash-flow-monitoring", "lending"], {}),
    ("Oakmoor Veterinary Practice", "gbol", "Deauthorized", ["lending"], {}),
    ("Tidewater Kayak Hire", "akxx", "Unlinked", ["expenses"], {}),
    ("Copperleaf Bakery", None, None, [], {}),
    ("Linden Street Dental", "qhyg", "Linked", ["expenses", "cash-flow-monitoring"], {}),
    ("Peakline Scaffolding", "gbol", "Cancelled", ["lending"], {}),
    ("Saltmarsh Brewing Co", "mqjo", "Linked", ["bank-feeds"], {}),
    ("Juniper Yoga Studio", "fbrh", "PendingAuth", [], {}),
    ("Redbrick Property Services", "gbol", "Linked", ["lending"], {"bills": "AuthError"}),
    ("Fernhill Garden Centre", "qhyg", "Deauthorized", ["invoice-finance"], {}),
    ("Blue Anchor Fish Bar", None, None, ["cash-flow-monitoring"], {}),
    ("Marlow & Sons Plumbing", "akxx", "Linked", ["invoice-finance", "cash-flow-monitoring"], {}),
    ("Quayside Print Works", "mqjo", "Unlinked", ["lending"], {}),
    ("Thistle Hair Salon", "gbol", "Linked", ["expenses"], {"taxRates": "NotSupported"}),
    ("Greystone Architects", "fbrh", "Linked", ["lending", "expenses"], {}),
    ("Hollybush Nursery School", "qhyg", "PendingAuth", ["invoice-finance"], {}),
    ("Lantern Books", "gbol", "Linked", ["cash-flow-monitoring"], {}),
    ("Meadowlark Catering", "mqjo", "Deauthorized", ["expenses"], {}),
    ("Ironbridge Cycles", "akxx", "Linked", ["invoice-finance"], {}),
    ("Silverbirch Accountancy", "gbol", "Unlinked", ["lending"], {}),
    ("Wildflower Wedding Cakes", "fbrh", "Linked", ["lending", "cash-flow-monitoring"], {}),
    ("Castlegate Pharmacy", "qhyg", "Linked", ["bank-feeds", "expenses"], {}),
    ("Riverside Motor Repairs", "gbol", "Cancelled", [], {}),
    ("Amberley Electrical", "mqjo", "Linked", ["invoice-finance"], {"customers": "FetchError"}),
    ("Foxglove Interiors", None, None, ["lending"], {}),
    ("Pennine Outdoor Gear", "akxx", "Linked", ["cash-flow-monitoring"], {}),
    ("Starling Digital Studio", "fbrh", "PendingAuth", ["expenses"], {}),
)

TAGS = ("retail", "services", "trade")

# Reads take seconds, not the minute of the sandbox's default, so the demo is quick to watch.
DEMO_READ_SECONDS = {"Queued": 1, "Fetching": 4, "Mapping": 2, "Validating": 1, "Processing": 1}

# Real seconds to wait for the new companies' first reads before answering anyway.
FIRST_READS_TIMEOUT_SECONDS = 60


def seed_demo_world(sb) -> list[dict]:
    """Define the custom products, make reads quick, create the companies not there yet.

    Returns the companies created: none when the world exists already."""
    for identifier, product in CUSTOM_PRODUCTS.items():
        define_product(sb, identifier, product)
    sb.settings["datasets"]["durations"] = dict(DEMO_READ_SECONDS)
    sb.save_settings()
    existing = {company["name"] for company in sb.store.all("company")}
    return [
        _create_company(sb, index, spec)
        for index, spec in enumerate(COMPANIES)
        if spec[0] not in existing
    ]


def _create_company(sb, index: int, spec: tuple) -> dict:
    name, platform_key, outcome, products, failing = spec
    company = add_company(
        sb,
        {
            "name": name,
            "description": f"Demo company {index + 1}",
            "tags": {"segment": TAGS[index % len(TAGS)]},
            "products": products or None,
        },
    )
    if failing:
        set_company_outcomes(sb, company, dict(failing))
    if not platform_key:
        return company
    connection = add_connection(sb, company, platform_key)
    at = sb.clock.now()
    if outcome == "Cancelled":
        sb.engine.fail_link(connection, at)
    elif outcome in ("Linked", "Deauthorized", "Unlinked"):
        sb.engine.authorize(connection, at)
    if outcome in ("Deauthorized", "Unlinked"):
        sb.engine.disconnect(connection, outcome, at)
    return company


async def wait_for_first_reads(sb, companies: list[dict], timeout_seconds: float) -> bool:
    """Wait until every dataset of `companies` has ended; False if `timeout_seconds` ran out.

    The reads run on the sandbox clock in real time, so a caller that imports the companies next
    sees data types complete and failed; jumping the clock instead would leave the sandbox ahead
    of its clients."""
    company_ids = {company["id"] for company in companies}
    deadline = time.monotonic() + timeout_seconds
    while any(
        d["companyId"] in company_ids and not is_terminal(d["status"])
        for d in sb.store.all("dataset")
    ):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def seed(request: Request):
    sb = sandbox_of(request)
    created = seed_demo_world(sb)
    finished = await wait_for_first_reads(sb, created, FIRST_READS_TIMEOUT_SECONDS)
    return json_response(
        {
            "created": len(created),
            "companies": len(COMPANIES),
            "customProducts": list(CUSTOM_PRODUCTS),
            "firstReadsFinished": finished,
        }
    )


ROUTES = [Route("/_sandbox/demo", seed, methods=["POST"])]
