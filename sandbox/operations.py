"""The Codat operations the sandbox implements: operationId -> method, path, documents.

This list is the contract: tests check it against the app's routes and against Codat's OpenAPI
documents, and the schemathesis run covers exactly these operations.
"""

from typing import NamedTuple

PLATFORM = "Codat-Platform.yaml"
BANK_FEEDS = "Codat-Bank-Feeds.yaml"


class Operation(NamedTuple):
    method: str
    path: str
    documents: tuple[str, ...]


BOTH = (PLATFORM, BANK_FEEDS)
_C = "/companies/{companyId}"
_K = _C + "/connections/{connectionId}"

OPERATIONS: dict[str, Operation] = {
    # Companies
    "list-companies": Operation("GET", "/companies", BOTH),
    "create-company": Operation("POST", "/companies", BOTH),
    "get-company": Operation("GET", _C, BOTH),
    "replace-company": Operation("PUT", _C, BOTH),
    "update-company": Operation("PATCH", _C, BOTH),
    "delete-company": Operation("DELETE", _C, BOTH),
    # Products
    "add-product": Operation("PUT", _C + "/products/{productIdentifier}", (PLATFORM,)),
    "remove-product": Operation("DELETE", _C + "/products/{productIdentifier}", (PLATFORM,)),
    "refresh-product-data": Operation(
        "POST", _C + "/products/{productIdentifier}/refresh", (PLATFORM,)
    ),
    # Connections
    "list-connections": Operation("GET", _C + "/connections", BOTH),
    "create-connection": Operation("POST", _C + "/connections", BOTH),
    "get-connection": Operation("GET", _K, BOTH),
    "delete-connection": Operation("DELETE", _K, BOTH),
    "unlink-connection": Operation("PATCH", _K, BOTH),
    # Refreshing data, data status, pull operations
    "refresh-company-data": Operation("POST", _C + "/data/all", (PLATFORM,)),
    "refresh-data-type": Operation("POST", _C + "/data/queue/{dataType}", (PLATFORM,)),
    "get-company-data-status": Operation("GET", _C + "/dataStatus", (PLATFORM,)),
    "list-pull-operations": Operation("GET", _C + "/data/history", (PLATFORM,)),
    "get-pull-operation": Operation("GET", _C + "/data/history/{datasetId}", (PLATFORM,)),
    # Push operations (the Bank Feeds document names the same two operations differently)
    "get-company-push-history": Operation("GET", _C + "/push", (PLATFORM,)),
    "get-push-operation": Operation("GET", _C + "/push/{pushOperationKey}", (PLATFORM,)),
    "list-create-operations": Operation("GET", _C + "/push", (BANK_FEEDS,)),
    "get-create-operation": Operation("GET", _C + "/push/{pushOperationKey}", (BANK_FEEDS,)),
    # Sync settings
    "get-profile-syncSettings": Operation("GET", "/profile/syncSettings", (PLATFORM,)),
    "update-profile-syncSettings": Operation("POST", "/profile/syncSettings", (PLATFORM,)),
    "get-company-syncSettings": Operation("GET", _C + "/syncSettings", (PLATFORM,)),
    "set-company-syncSettings": Operation("POST", _C + "/syncSettings", (PLATFORM,)),
    # Webhook consumers
    "list-webhook-consumers": Operation("GET", "/webhooks", (PLATFORM,)),
    "create-webhook-consumer": Operation("POST", "/webhooks", (PLATFORM,)),
    "delete-webhook-consumer": Operation("DELETE", "/webhooks/{webhookId}", (PLATFORM,)),
    # Bank feeds
    "list-source-accounts": Operation(
        "GET", _K + "/connectionInfo/bankFeedAccounts", (BANK_FEEDS,)
    ),
    "create-source-account": Operation(
        "POST", _K + "/connectionInfo/bankFeedAccounts", (BANK_FEEDS,)
    ),
    "create-batch-source-account": Operation(
        "POST", _K + "/connectionInfo/bankFeedAccounts/batch", (BANK_FEEDS,)
    ),
    "update-source-account": Operation(
        "PATCH", _K + "/connectionInfo/bankFeedAccounts/{accountId}", (BANK_FEEDS,)
    ),
    "delete-source-account": Operation(
        "DELETE", _K + "/connectionInfo/bankFeedAccounts/{accountId}", (BANK_FEEDS,)
    ),
    "get-bank-account-mapping": Operation("GET", _K + "/bankFeedAccounts/mapping", (BANK_FEEDS,)),
    "create-bank-account-mapping": Operation(
        "POST", _K + "/bankFeedAccounts/mapping", (BANK_FEEDS,)
    ),
    "create-bank-transactions": Operation(
        "POST", _K + "/push/bankAccounts/{accountId}/bankTransactions", (BANK_FEEDS,)
    ),
}


def operations_in(document: str) -> dict[str, Operation]:
    return {key: op for key, op in OPERATIONS.items() if document in op.documents}
