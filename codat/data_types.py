"""Codat's data-type identifiers (the `DataType` enum of the Platform API, 43 values).

Framework-free, for the client and the Django apps. The sandbox keeps its own list
(sandbox/vocabulary.py), so that a mistake here cannot hide on both sides.
"""

ACCOUNTING = "accounting"
BANKING = "banking"
COMMERCE = "commerce"

ACCOUNTING_DATA_TYPES = (
    "accountTransactions",
    "balanceSheet",
    "bankAccounts",
    "bankTransactions",
    "billCreditNotes",
    "billPayments",
    "bills",
    "cashFlowStatement",
    "chartOfAccounts",
    "company",
    "creditNotes",
    "customers",
    "directCosts",
    "directIncomes",
    "invoices",
    "itemReceipts",
    "items",
    "journalEntries",
    "journals",
    "paymentMethods",
    "payments",
    "profitAndLoss",
    "purchaseOrders",
    "salesOrders",
    "suppliers",
    "taxRates",
    "trackingCategories",
    "transfers",
)

BANKING_DATA_TYPES = (
    "banking-accountBalances",
    "banking-accounts",
    "banking-transactionCategories",
    "banking-transactions",
)

COMMERCE_DATA_TYPES = (
    "commerce-companyInfo",
    "commerce-customers",
    "commerce-disputes",
    "commerce-locations",
    "commerce-orders",
    "commerce-paymentMethods",
    "commerce-payments",
    "commerce-productCategories",
    "commerce-products",
    "commerce-taxComponents",
    "commerce-transactions",
)

CATEGORY_BY_DATA_TYPE = {
    **dict.fromkeys(ACCOUNTING_DATA_TYPES, ACCOUNTING),
    **dict.fromkeys(BANKING_DATA_TYPES, BANKING),
    **dict.fromkeys(COMMERCE_DATA_TYPES, COMMERCE),
}

ALL_DATA_TYPES = tuple(CATEGORY_BY_DATA_TYPE)

# The status enum shared by PullOperation.status and DataStatus.currentStatus (21 values).
DATASET_STATUSES = (
    "Initial",
    "Queued",
    "Fetching",
    "MapQueued",
    "Mapping",
    "Complete",
    "FetchError",
    "MapError",
    "InternalError",
    "ProcessingQueued",
    "Processing",
    "ProcessingError",
    "ValidationQueued",
    "Validating",
    "ValidationError",
    "AuthError",
    "Cancelled",
    "NotSupported",
    "RateLimitError",
    "PermissionsError",
    "PrerequisiteNotMet",
)

CONNECTION_STATUSES = ("PendingAuth", "Linked", "Unlinked", "Deauthorized")

SOURCE_TYPES = ("Accounting", "Banking", "BankFeed", "Commerce", "Expense", "Other", "Unknown")
