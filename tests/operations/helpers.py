"""Building blocks for the operations tests: catalogue rows, sandbox fleets, waiting."""

import time

from codat.client import CodatClient
from companies.codat_import import companies_import_from_codat
from companies.models import Company
from operations.models import ACTIVE_STATES, Operation
from operations.sweeper import operations_sweep
from products.data_type_texts import DATA_TYPE_TEXTS
from products.models import DataType
from products.services import product_define
from tests.waiting import wait_until

LENDING_TYPES = ["company", "chartOfAccounts", "balanceSheet", "profitAndLoss", "invoices"]


def ensure_data_types(identifiers) -> None:
    """Transactional tests truncate the migrated catalogue; put back the rows a test needs."""
    from codat.data_types import ACCOUNTING_DATA_TYPES, BANKING_DATA_TYPES

    for identifier in identifiers:
        name, description = DATA_TYPE_TEXTS[identifier]
        if identifier in ACCOUNTING_DATA_TYPES:
            category = "accounting"
        elif identifier in BANKING_DATA_TYPES:
            category = "banking"
        else:
            category = "commerce"
        DataType.objects.get_or_create(
            identifier=identifier,
            defaults={"name": name, "category": category, "description": description},
        )


def lending_product():
    ensure_data_types(LENDING_TYPES)
    return product_define(
        identifier="lending", name="Lending", kind="standard", data_types=LENDING_TYPES
    )


def custom_product(sandbox, identifier="cash-flow", data_types=("invoices", "bills")):
    """A custom product both at the sandbox (its catalogue) and in the portal's catalogue."""
    sandbox.control(
        "PUT",
        f"products/{identifier}",
        {"name": "Cash flow", "dataTypes": list(data_types), "schedule": {"frequency": "hourly"}},
    )
    ensure_data_types(data_types)
    return product_define(
        identifier=identifier,
        name="Cash flow",
        kind="custom",
        schedule_kind="hourly",
        data_types=list(data_types),
    )


def sandbox_client(sandbox) -> CodatClient:
    return CodatClient(sandbox.base_url, sandbox.api_key, timeout=(3, 10))


def make_fleet(sandbox, count: int) -> list[Company]:
    """`count` companies at the sandbox, mirrored into the portal."""
    client = sandbox_client(sandbox)
    for number in range(count):
        client.create_company(f"Fleet {number}")
    client.close()
    companies_import_from_codat()
    return list(Company.objects.order_by("pk"))


def wait_for_job(job, *, timeout: float, sweep_every: float | None = None, on_tick=None):
    """Wait until no row of `job` is live; optionally play beat's sweeper meanwhile."""
    last_sweep = time.monotonic()

    def finished() -> bool:
        nonlocal last_sweep
        if on_tick is not None:
            on_tick()
        if not Operation.objects.filter(job=job, state__in=ACTIVE_STATES).exists():
            return True
        if sweep_every is not None and time.monotonic() - last_sweep >= sweep_every:
            operations_sweep()
            last_sweep = time.monotonic()
        return False

    def still_live() -> str:
        live = Operation.objects.filter(job=job, state__in=ACTIVE_STATES).count()
        return f"job {job.pk} still has {live} live rows"

    wait_until(finished, timeout=timeout, interval=0.2, message=still_live)


def sandbox_products(sandbox) -> dict[str, list[str]]:
    """Codat's view: company id -> products."""
    body = sandbox.request("GET", "/companies", params={"pageSize": 5000}).json()
    return {company["id"]: company.get("products") or [] for company in body["results"]}


def link_company(sandbox, company, platform_key: str = "mqjo") -> str:
    """Give a company a Linked connection at the sandbox (its first reads start)."""
    client = sandbox_client(sandbox)
    connection = client.create_connection(str(company.codat_id), platform_key)
    client.close()
    sandbox.authorize(str(company.codat_id), connection["id"])
    return connection["id"]
