"""The demo world of `make run`, created in a running sandbox the way a client and its SMBs would.

Custom products are defined (the real Codat defines them for the client on request), companies are
created through the public API, connections are created and then authorised, cancelled or lost
through the Link outcomes of the control API. Idempotent: a company whose name exists is left as
it is. The portal then imports everything from Codat (`manage.py seed_demo`).

    CODAT_API_KEY=... python -m sandbox.demo --base-url http://127.0.0.1:8765
"""

import argparse
import base64
import os
import sys
import time

import requests

from codat import CodatClient
from codat.event_types import STANDARD_EVENT_TYPES

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

# What the portal's endpoint subscribes to under `make run`: every event type it handles.
PORTAL_EVENT_TYPES = [
    *STANDARD_EVENT_TYPES,
    "bankTransactions.write.successful",
    "bankTransactions.write.unsuccessful",
    *(f"{identifier}.read.completed" for identifier in CUSTOM_PRODUCTS),
]


class SandboxDemo:
    def __init__(self, base_url: str, api_key: str):
        self.client = CodatClient(base_url, api_key, timeout=(3, 30))
        self.base_url = base_url.rstrip("/")
        self.authorization = "Basic " + base64.b64encode(api_key.encode()).decode("ascii")

    def control(self, method: str, path: str, json=None) -> dict | None:
        response = requests.request(
            method,
            f"{self.base_url}/_sandbox/{path}",
            json=json,
            headers={"Authorization": self.authorization},
            timeout=(3, 30),
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def define_products(self) -> None:
        for identifier, product in CUSTOM_PRODUCTS.items():
            self.control("PUT", f"products/{identifier}", json=product)

    def create_company(self, index: int, spec: tuple) -> None:
        name, platform_key, outcome, products, failing = spec
        company = self.client.create_company(
            name,
            description=f"Demo company {index + 1}",
            tags={"segment": TAGS[index % len(TAGS)]},
            products=products or None,
        )
        if failing:
            self.control("PUT", f"companies/{company['id']}/dataset-outcomes", json=failing)
        if not platform_key:
            return
        connection = self.client.create_connection(company["id"], platform_key)
        path = f"companies/{company['id']}/connections/{connection['id']}"
        if outcome == "Cancelled":
            self.control("POST", f"{path}/cancel")
        elif outcome in ("Linked", "Deauthorized", "Unlinked"):
            self.control("POST", f"{path}/authorize")
        if outcome == "Deauthorized":
            self.control("POST", f"{path}/deauthorize")
        elif outcome == "Unlinked":
            self.client.unlink_connection(company["id"], connection["id"])

    def ensure_consumer(self, url: str) -> str:
        """Register `url` for the portal's event types (once) and return its signing secret,
        which the real Codat shows only in its Portal and the sandbox gives its control API."""
        consumers = self.client.list_webhook_consumers().get("results") or []
        consumer = next((c for c in consumers if c["url"] == url), None)
        if consumer is None:
            consumer = self.client.create_webhook_consumer(url, event_types=PORTAL_EVENT_TYPES)
        return self.control("GET", f"webhooks/consumers/{consumer['id']}/secret")["secret"]

    def seed(self) -> int:
        self.define_products()
        self.control("PUT", "datasets", json={"durations": DEMO_READ_SECONDS})
        existing = {company["name"] for company in self.client.iter_companies(page_size=500)}
        created = 0
        for index, spec in enumerate(COMPANIES):
            if spec[0] not in existing:
                self.create_company(index, spec)
                created += 1
        if created:
            # Let the first reads finish in real time, so the demo shows data types complete
            # and failed; jumping the clock instead would leave the sandbox ahead of the portal.
            time.sleep(sum(DEMO_READ_SECONDS.values()) + 1)
        return created


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.demo")
    parser.add_argument("--base-url", default="http://127.0.0.1:8765")
    parser.add_argument(
        "--consumer-url", help="also register this webhook endpoint and print its secret"
    )
    args = parser.parse_args(argv)
    api_key = os.environ.get("CODAT_API_KEY")
    if not api_key:
        print("CODAT_API_KEY must be set", file=sys.stderr)
        return 2
    try:
        demo = SandboxDemo(args.base_url, api_key)
        secret = demo.ensure_consumer(args.consumer_url) if args.consumer_url else None
        created = demo.seed()
    except requests.RequestException as error:
        print(f"could not seed the sandbox at {args.base_url}: {error}", file=sys.stderr)
        return 1
    print(f"Sandbox demo: {created} companies created ({len(COMPANIES)} in the demo).")
    if secret:
        print(f"Webhook consumer {args.consumer_url}: secret {secret}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
