"""What the sandbox's Codat offers: integrations, standard products, default sync settings."""

import functools
import uuid

from sandbox.vocabulary import (
    ACCOUNTING_DATA_TYPES,
    BANKING_DATA_TYPES,
    COMMERCE_DATA_TYPES,
    DATA_TYPES,
)

# platformKey -> (platformName, sourceType). Keys are Codat's real ones where the docs name them.
INTEGRATIONS = {
    "mqjo": ("Sandbox", "Accounting"),
    "gbol": ("Xero", "Accounting"),
    "qhyg": ("QuickBooks Online", "Accounting"),
    "pdvj": ("FreshBooks", "Accounting"),
    "fbrh": ("FreeAgent", "Accounting"),
    "akxx": ("Oracle NetSuite", "Accounting"),
    "hcws": ("QuickBooks Online Bank Feeds", "BankFeed"),
    "olpr": ("Sage Bank Feeds", "BankFeed"),
    "vvfk": ("Banking Sandbox", "Banking"),
    "ndsk": ("Commerce Sandbox", "Commerce"),
    "expn": ("Expenses Sandbox", "Expense"),
}

# Stable ids so that a connection's integrationId and sourceId survive resets and restarts.
_NAMESPACE = uuid.UUID("6f0c2a44-9a55-4d2e-8d0e-5b1f3c0a7e11")


def integration_id(platform_key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"integration:{platform_key}"))


def source_id(platform_key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"source:{platform_key}"))


DATA_TYPES_BY_SOURCE_TYPE = {
    "Accounting": ACCOUNTING_DATA_TYPES,
    "Banking": BANKING_DATA_TYPES,
    "Commerce": COMMERCE_DATA_TYPES,
    "BankFeed": (),
    "Expense": (),
    "Other": (),
    "Unknown": (),
}

# Standard products: defined by Codat, no schedule of their own, not refreshable.
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
    "payables": {
        "name": "Payables",
        "dataTypes": ["company", "bills", "suppliers", "billPayments", "bankAccounts", "taxRates"],
    },
    "spend-insights": {
        "name": "Spend Insights",
        "dataTypes": [
            "bills",
            "billPayments",
            "suppliers",
            "chartOfAccounts",
            "banking-transactions",
        ],
    },
    "accounting": {"name": "Accounting API", "dataTypes": []},
    "banking": {"name": "Banking API", "dataTypes": []},
    "commerce": {"name": "Commerce API", "dataTypes": []},
}

FETCH_ON_FIRST_LINK = {
    "company",
    "chartOfAccounts",
    "balanceSheet",
    "profitAndLoss",
    "customers",
    "suppliers",
    "invoices",
    "bills",
    "payments",
    "billPayments",
    "bankAccounts",
    "taxRates",
    "banking-accounts",
    "banking-accountBalances",
    "banking-transactions",
    "commerce-companyInfo",
    "commerce-customers",
    "commerce-orders",
    "commerce-payments",
}


@functools.cache
def default_sync_settings() -> list[dict]:
    """Codat's defaults for a new client (one list, shared: callers only read it)."""
    settings = []
    for order, data_type in enumerate(DATA_TYPES):
        setting = {
            "dataType": data_type,
            "fetchOnFirstLink": data_type in FETCH_ON_FIRST_LINK,
            "syncSchedule": 24,
            "syncOrder": order,
            "isLocked": False,
        }
        if data_type in ("balanceSheet", "profitAndLoss", "cashFlowStatement"):
            setting["monthsToSync"] = 24
        settings.append(setting)
    return settings
