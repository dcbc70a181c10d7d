"""Codat's enumerations as the sandbox knows them, in the order the OpenAPI documents list them.

The sandbox keeps its own copy rather than importing the portal's client: a misreading shared by
both would pass every contract test. `tests/sandbox/test_vocabulary.py` holds each list to the
published documents instead.
"""

# The `DataType` enum (Platform `DataStatus.dataType`; Bank Feeds `DataType`).
DATA_TYPES = (
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
    "banking-accountBalances",
    "banking-accounts",
    "banking-transactionCategories",
    "banking-transactions",
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

# Banking and commerce types carry their API's prefix; every other type is an accounting one.
BANKING_DATA_TYPES = tuple(t for t in DATA_TYPES if t.startswith("banking-"))
COMMERCE_DATA_TYPES = tuple(t for t in DATA_TYPES if t.startswith("commerce-"))
ACCOUNTING_DATA_TYPES = tuple(
    t for t in DATA_TYPES if t not in BANKING_DATA_TYPES and t not in COMMERCE_DATA_TYPES
)

# `PullOperation.status`, which `DataStatus.currentStatus` refers to.
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

# `Connection.dataConnectionSourceType` (also `Integration.sourceType`).
SOURCE_TYPES = ("Accounting", "Banking", "BankFeed", "Commerce", "Expense", "Other", "Unknown")

# The `webhooks` entries with a fixed name, Platform document first, then Bank Feeds.
EVENT_TYPES = (
    "company.created",
    "company.deleted",
    "company.product.added",
    "company.product.removed",
    "connection.created",
    "connection.connected",
    "connection.failed",
    "connection.disconnected",
    "connection.reconnected",
    "connection.deleted",
    "read.completed",
    "read.completed.initial",
    "client.rateLimit.reached",
    "client.rateLimit.reset",
    "bankFeeds.sourceAccount.connected",
    "bankFeeds.sourceAccount.disconnected",
)

# The generic read sub-events: Codat's docs name them in prose beside read.completed (multiple
# use cases page; the seed names them too), with read.completed's payload; the documents have no
# `webhooks` entry for them.
GENERIC_READ_SUB_EVENTS = (
    "read.completed.successful",
    "read.completed.unsuccessful",
    "read.completed.successful.initial",
)

# The patterned entries: `{dataType}.write.successful` and `{dataType}.write.unsuccessful`.
WRITE_EVENT_SUFFIXES = ("write.successful", "write.unsuccessful")

# Custom products' events, `{productIdentifier}.read.completed` and its sub-events. Codat's docs
# describe them in prose only; the documents have the payload schema but no `webhooks` entry.
PRODUCT_READ_EVENT_SUFFIXES = (
    "read.completed",
    "read.completed.successful",
    "read.completed.unsuccessful",
    "read.completed.initial",
)


def is_documented_event_type(event_type: str, custom_products) -> bool:
    """True for a fixed-name event, a data type's write event, or a read event of one of
    `custom_products` (identifiers, which may themselves contain dots)."""
    if event_type in EVENT_TYPES or event_type in GENERIC_READ_SUB_EVENTS:
        return True
    for suffix in WRITE_EVENT_SUFFIXES:
        if event_type.endswith("." + suffix):
            return event_type[: -len(suffix) - 1] in DATA_TYPES
    for suffix in PRODUCT_READ_EVENT_SUFFIXES:
        if event_type.endswith("." + suffix) and event_type[: -len(suffix) - 1] in custom_products:
            return True
    return False
