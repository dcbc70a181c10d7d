"""The demo of `make run`: the product catalogue, then every company imported from Codat.

The companies are not invented here: they are whatever the Codat at CODAT_BASE_URL holds. Under
`make run` that is the sandbox, whose demo world (`POST /_sandbox/demo`) holds companies in every
state, so the portal meets them exactly as it would meet a real client's companies.
Safe to run again: the catalogue is updated and the import mirrors what Codat says now.

The demo's custom products belong to that world: the sandbox defines them, as the real Codat
defines a client's custom products on request, and they are read back here over the sandbox's
control API. One definition, at Codat's side, means the products the companies hold and the
products the catalogue offers cannot drift apart.

Under `make run` the seed also registers the portal's own webhook endpoint at Codat, as an
operator would in the admin: through `webhook_consumer_register`, whose operation row a worker
runs. So the consumer is in the admin, with Codat's id, from the start.
"""

import logging
import time
from datetime import time as time_of_day

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from codat import CodatError
from portal.sandbox_control import SandboxControl, SandboxControlError
from products.models import CompanyProduct, CompanyProductStatus, Product
from products.services import product_define
from webhooks.consumers import event_type_choices, webhook_consumer_register
from webhooks.models import ConsumerStatus, WebhookConsumer

logger = logging.getLogger(__name__)

# Codat's standard products that the demo offers, as Codat defines them: its names, and the data
# types it reads for each (tests/portal/test_seed_demo.py holds these to the sandbox's).
STANDARD_PRODUCTS = {
    "lending": {
        "name": "Lending",
        "dataTypes": [
            "company",
            "chartOfAccounts",
            "balanceSheet",
            "profitAndLoss",
            "invoices",
            "bills",
            "customers",
            "suppliers",
            "banking-accounts",
            "banking-accountBalances",
            "banking-transactions",
        ],
    },
    "bank-feeds": {"name": "Bank Feeds", "dataTypes": ["bankAccounts"]},
    "expenses": {
        "name": "Expenses",
        "dataTypes": ["company", "chartOfAccounts", "taxRates", "trackingCategories", "suppliers"],
    },
}

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

# Demo companies whose owners have already agreed to a use case they do not have yet, so that a
# bulk add of it over every company shows both outcomes: these go straight through, the others
# are asked for consent and added when they grant (and the two that have it are left out).
CONSENTED_BEFORE_ADD = {
    "bank-feeds": {
        "Greystone Architects",
        "Ironbridge Cycles",
        "Lantern Books",
        "Linden Street Dental",
        "Redbrick Property Services",
    },
}

# Webhooks the portal's endpoint handles besides Codat's fixed-name ones (and each custom product's
# `{identifier}.read.completed`): the outcome of its bank-feed pushes.
PORTAL_WRITE_EVENT_TYPES = (
    "bankTransactions.write.successful",
    "bankTransactions.write.unsuccessful",
)


class DemoConsumerNotRegistered(Exception):
    """The portal's own webhook consumer did not get Codat's id (failed, or no worker ran it)."""


def _schedule(custom: dict) -> dict:
    schedule = custom.get("schedule") or {}
    if schedule.get("frequency") == "daily":
        hours, minutes = (int(part) for part in schedule["time"].split(":"))
        return {"schedule_kind": "daily", "schedule_time": time_of_day(hours, minutes)}
    if schedule.get("frequency") == "hourly":
        return {"schedule_kind": "hourly", "schedule_time": None}
    return {"schedule_kind": "none", "schedule_time": None}


def custom_products_at_codat() -> dict[str, dict]:
    """The custom products of the demo world, by identifier, read from the sandbox."""
    control = SandboxControl(settings.CODAT_BASE_URL, settings.CODAT_API_KEY)
    return control.custom_products()


def seed_products(custom_at_codat: dict[str, dict]) -> list[Product]:
    """Define the demo's products; a custom product Codat does not have is left out."""
    products = []
    for spec in PRODUCTS:
        if spec["kind"] == "custom":
            at_codat = custom_at_codat.get(spec["identifier"])
            if at_codat is None:
                continue
            schedule = _schedule(at_codat)
        else:
            at_codat, schedule = STANDARD_PRODUCTS[spec["identifier"]], {}
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
    active products (all but AWAITING_CONSENT), so refreshes are allowed where they would be,
    and to the use cases of CONSENTED_BEFORE_ADD, which those companies do not have yet."""
    from companies.models import Company
    from consent.selectors import consent_covers, consent_text_current
    from consent.services import Actor, ConsentChannel, consent_grant

    active = CompanyProduct.objects.filter(status=CompanyProductStatus.ACTIVE).select_related(
        "company", "product"
    )
    pairs = [
        (assignment.company, assignment.product)
        for assignment in active.exclude(company__name__in=AWAITING_CONSENT)
    ]
    for identifier, names in CONSENTED_BEFORE_ADD.items():
        product = Product.objects.filter(identifier=identifier).first()
        if product is not None:
            pairs += [(company, product) for company in Company.objects.filter(name__in=names)]
    recorded = 0
    for company, product in pairs:
        if consent_covers(company, product):
            continue
        with transaction.atomic():
            consent_grant(
                company=company,
                product=product,
                text=consent_text_current(product=product),
                actor=Actor(channel=ConsentChannel.ADMIN, user=operator),
            )
        recorded += 1
    return recorded


def demo_webhook_consumer(*, url: str) -> WebhookConsumer:
    """The portal's own endpoint as a consumer at Codat, registered through the service (an
    operation row the workers run, as every Codat call is). A consumer for the URL that is
    registered, or being registered, is kept: running the seed again adds no second one."""
    existing = (
        WebhookConsumer.objects.filter(
            url=url,
            disabled=False,
            status__in=(ConsumerStatus.ACTIVE, ConsumerStatus.PENDING_CREATE),
        )
        .order_by("created_at", "id")
        .first()
    )
    if existing is not None:
        return existing
    event_types = [value for value, _ in event_type_choices()]
    return webhook_consumer_register(url=url, event_types=[*event_types, *PORTAL_WRITE_EVENT_TYPES])


def demo_webhook_consumer_wait(consumer: WebhookConsumer, *, seconds: float) -> WebhookConsumer:
    """The consumer once a worker has registered it at Codat (it then has Codat's id, which the
    sandbox's control API needs to give out its signing secret)."""
    deadline = time.monotonic() + seconds
    while True:
        consumer.refresh_from_db()
        if consumer.status == ConsumerStatus.ACTIVE and consumer.codat_id is not None:
            return consumer
        if consumer.status != ConsumerStatus.PENDING_CREATE:
            raise DemoConsumerNotRegistered(
                f"webhook consumer {consumer.url} is {consumer.get_status_display()}: "
                f"{consumer.last_error or 'no error recorded'}"
            )
        if time.monotonic() >= deadline:
            raise DemoConsumerNotRegistered(
                f"webhook consumer {consumer.url} was not registered at Codat within "
                f"{seconds:.0f} s: is a worker running (its operation row waits for one)?"
            )
        time.sleep(0.2)


# Demo companies already moved to product-level syncs: their own sync settings keep a
# client-level schedule for a few data types and turn it off for the ones their custom product
# reads. The other holders of a custom product stay under the client's settings (Codat's default:
# every data type daily), so the sync settings page and the company list show dual-sync risks
# next to client-level and product-level companies.
PRODUCT_LEVEL_DEMO = {
    "Lantern Books": "cash-flow-monitoring",
    "Pennine Outdoor Gear": "cash-flow-monitoring",
}
STILL_CLIENT_LEVEL_DEMO = ("invoices", "bills", "chartOfAccounts")


def demo_sync_settings() -> int:
    """Read the client's sync settings from Codat, and give the PRODUCT_LEVEL_DEMO companies
    their own; each an operation row the worker runs. How many rows were written or joined."""
    from companies.models import Company
    from syncsettings.services import (
        client_sync_settings_read_request,
        company_sync_settings_set_request,
    )

    client_sync_settings_read_request()
    written = 1
    products = {p.identifier: p for p in Product.objects.filter(kind="custom")}
    for name, identifier in PRODUCT_LEVEL_DEMO.items():
        company = Company.objects.filter(name=name).first()
        product = products.get(identifier)
        if company is None or product is None:
            continue
        own_types = sorted(product.product_data_types.values_list("data_type_id", flat=True))
        settings = [
            {"dataType": data_type, "fetchOnFirstLink": True, "syncSchedule": 24, "syncOrder": i}
            for i, data_type in enumerate(STILL_CLIENT_LEVEL_DEMO)
        ] + [
            {
                "dataType": data_type,
                "fetchOnFirstLink": False,
                "syncSchedule": 0,
                "syncOrder": len(STILL_CLIENT_LEVEL_DEMO) + i,
            }
            for i, data_type in enumerate(own_types)
        ]
        company_sync_settings_set_request(
            company=company, settings=settings, overrides_defaults=True
        )
        written += 1
    return written


def seed_demo(*, operator_username: str = "admin", webhook_url: str = "") -> dict[str, int | str]:
    """The catalogue, the companies at Codat, demo consent and, given `webhook_url`, the portal's
    endpoint registered at Codat (`webhook_consumer`: its pk; its operation row is not waited for
    here, so the call runs while the companies are imported)."""
    from companies.codat_import import companies_import_with_details_from_codat

    notes = []
    try:
        custom_at_codat = custom_products_at_codat()
    except SandboxControlError as error:
        # Not the sandbox (a real Codat has no control API), or no sandbox running.
        logger.warning("seed_demo.no_sandbox_products", extra={"error": str(error)})
        custom_at_codat = {}
        notes.append(f"custom products not defined: no sandbox demo world to read ({error})")
    products = seed_products(custom_at_codat)
    counts: dict[str, int | str] = {"products": len(products), "companies": 0, "consents": 0}
    if webhook_url:
        # After the catalogue: the custom products' `read.completed` events are subscribed too.
        counts["webhook_consumer"] = demo_webhook_consumer(url=webhook_url).pk
    try:
        counts["companies"] = companies_import_with_details_from_codat()
    except CodatError as error:
        logger.warning("seed_demo.codat_unreachable", extra={"error": str(error)})
        notes.append(f"companies not imported: Codat did not answer ({error})")
    else:
        counts["sync_settings_operations"] = demo_sync_settings()
        operator = get_user_model().objects.filter(username=operator_username).first()
        if operator is None:
            notes.append(f"no consent recorded: no staff account named {operator_username!r}")
        else:
            counts["consents"] = record_demo_consent(operator)
    if notes:
        counts["note"] = "; ".join(notes)
    return counts
